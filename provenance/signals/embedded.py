"""Every signal embedded in an image's bytes (C2PA, IPTC/PLUS) plus its rights facts, in one call.

Ingest calls this for every image inside worker processes: it is cheap on images without
metadata (the C2PA reader returns at once; XMP is parsed only when a packet exists) and never
raises, so one odd file cannot stop a run.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from provenance.domain import Signal, SignalKind, SignalStatus
from provenance.signals.c2pa import c2pa_signal
from provenance.signals.xmp import facts_from, iptc_from_xmp, read_xmp


def read_embedded(
    data: bytes, img: Image.Image | None, mime: str | None
) -> tuple[tuple[Signal, ...], dict[str, Any]]:
    """(C2PA signal, IPTC signal) and the rights facts of one image.

    `img` is the decoded (or at least opened) Pillow image; None when decoding failed, in which
    case the IPTC signal is UNKNOWN and there are no facts.
    """
    c2pa = c2pa_signal(data, mime)
    if img is None:
        iptc = Signal(
            SignalKind.IPTC,
            SignalStatus.UNKNOWN,
            "image could not be decoded; XMP not read",
            extra={"data_mining": None, "other_constraints": None},
        )
        return (c2pa, iptc), {}
    read = read_xmp(img)
    return (c2pa, iptc_from_xmp(read)), facts_from(img, read)
