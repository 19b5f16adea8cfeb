"""C2PA manifests (c2pa-python) as a training/mining signal.

Reads the `c2pa.training-mining` (C2PA 1.x/2.x) and `cawg.training-mining` (CAWG) assertions of
the ACTIVE manifest. Entry values (`use`): `allowed`, `notAllowed`, `constrained`; the last two
reserve. The reader validates the manifest offline (no trust list, remote manifests not
fetched): the validation state and status codes are recorded, and a reservation is honoured
whatever the validation state, while an `allowed` read from a manifest that does not validate
says so in the detail, so a policy can refuse to rely on it.
"""

from __future__ import annotations

import functools
import io
import json
import re
from typing import Any

from c2pa import C2paError, Context, Reader, Settings

from provenance.domain import Signal, SignalKind, SignalStatus

TRAINING_MINING_LABELS = ("c2pa.training-mining", "cawg.training-mining")
RESERVING_USES = frozenset({"notAllowed", "constrained"})
MAX_EVIDENCE_CHARS = 64 * 1024
# Assertion labels may carry a version (`.v2`) or a duplicate-instance suffix (`__1`).
_LABEL_SUFFIX = re.compile(r"(\.v\d+)?(__\d+)?$")


@functools.cache
def _context() -> Context:
    """One reader context per process: never fetch a remote manifest (parsers do no I/O)."""
    settings = Settings()
    settings.set("verify.remote_manifest_fetch", "false")
    return Context(settings)


@functools.cache
def _supported_mimes() -> frozenset[str]:
    return frozenset(m for m in Reader.get_supported_mime_types() if "/" in m)


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type from magic bytes (the reader silently finds nothing on a wrong one)."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "):
        return "image/jxl"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heic"
    return None


def _jpeg_may_hold_manifest(data: bytes) -> bool:
    """Walk the JPEG header segments up to the image data: C2PA lives in APP11 (JUMBF), a remote
    manifest is referenced from XMP (APP1, `dcterms:provenance`). Odd structure -> True."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return True
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more metadata segments
            return False
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return True
        if marker == 0xEB or (marker == 0xE1 and b"provenance" in data[pos + 4 : pos + 2 + length]):
            return True
        pos += 2 + length
    return False


def _png_may_hold_manifest(data: bytes) -> bool:
    """Walk the PNG chunks: C2PA lives in `caBX`; XMP (iTXt) may reference a remote manifest."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"caBX" or (
            kind == b"iTXt" and b"provenance" in data[pos + 8 : pos + 8 + length]
        ):
            return True
        if kind == b"IEND":
            return False
        pos += 12 + length
    return False


def may_hold_manifest(data: bytes, mime: str) -> bool:
    """Whether the reader could find a manifest: a cheap structural pre-check for JPEG and PNG
    (most images, read on the ingest hot path); every other format goes to the reader."""
    if mime == "image/jpeg":
        return _jpeg_may_hold_manifest(data)
    if mime == "image/png":
        return _png_may_hold_manifest(data)
    return True


def _base_label(label: str) -> str:
    return _LABEL_SUFFIX.sub("", label)


def _training_mining(assertions: list[Any]) -> dict[str, str]:
    """Entry name -> `use` over every training-mining assertion, in manifest order."""
    entries: dict[str, str] = {}
    for assertion in assertions:
        if (
            not isinstance(assertion, dict)
            or _base_label(str(assertion.get("label", ""))) not in TRAINING_MINING_LABELS
        ):
            continue
        data = assertion.get("data")
        raw = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            continue
        for name, entry in raw.items():
            use = entry.get("use") if isinstance(entry, dict) else entry
            entries[str(name)] = str(use)
    return entries


def _codes(store: dict[str, Any]) -> list[str]:
    """Top-level validation status codes, de-duplicated in first-seen order."""
    codes: list[str] = []
    for item in store.get("validation_status") or []:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and code not in codes:
            codes.append(code)
    return codes


def _extra(present: bool, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "present": present,
        "validation_state": None,
        "validation_codes": [],
        "training_mining": {},
        "assertion_labels": [],
        "error": None,
    }
    base.update(values)
    return base


def _verdict(entries: dict[str, str], state: str | None) -> tuple[SignalStatus, str]:
    invalid = "" if state in ("Valid", "Trusted") else f"; manifest does not validate ({state})"
    reserving = sorted(k for k, v in entries.items() if v in RESERVING_USES)
    if reserving:
        return SignalStatus.RESERVED, ", ".join(f"{k}: {entries[k]}" for k in reserving) + invalid
    odd = sorted(k for k, v in entries.items() if v != "allowed")
    if odd:
        return SignalStatus.UNKNOWN, "unrecognised training-mining use: " + ", ".join(
            f"{k}: {entries[k]}" for k in odd
        )
    if not entries:
        return SignalStatus.ALLOWED, "no training-mining assertion" + invalid
    return SignalStatus.ALLOWED, "training-mining allowed" + invalid


def manifest_signal(store_json: str, state: str | None) -> Signal:
    """The signal of a manifest store (the reader's JSON) and its validation state."""
    store = json.loads(store_json)
    if not isinstance(store, dict):
        raise ValueError("manifest store is not a JSON object")
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) if isinstance(manifests, dict) else None
    assertions = active.get("assertions") if isinstance(active, dict) else None
    assertions = assertions if isinstance(assertions, list) else []
    labels = [str(a.get("label")) for a in assertions if isinstance(a, dict) and "label" in a]
    entries = _training_mining(assertions)
    status, detail = _verdict(entries, state)
    extra = _extra(
        True,
        validation_state=state,
        validation_codes=_codes(store),
        training_mining=entries,
        assertion_labels=labels,
    )
    return Signal(
        SignalKind.C2PA, status, detail, extra=extra, evidence=store_json[:MAX_EVIDENCE_CHARS]
    )


def c2pa_signal(data: bytes, mime: str | None) -> Signal:
    """C2PA verdict of an image's bytes. Never raises.

    No manifest -> ALLOWED "no C2PA manifest"; a reader error (malformed manifest, unparseable
    file) -> UNKNOWN with the error; a format the reader cannot handle -> UNKNOWN (not checked).
    """
    kind = sniff_mime(data) or (mime or "").lower().split(";")[0].strip() or None
    if kind is None or kind not in _supported_mimes():
        detail = f"C2PA not checked: format {kind or 'unrecognised'} not supported by the reader"
        return Signal(SignalKind.C2PA, SignalStatus.UNKNOWN, detail, extra=_extra(False))
    if not may_hold_manifest(data, kind):
        return Signal(
            SignalKind.C2PA, SignalStatus.ALLOWED, "no C2PA manifest", extra=_extra(False)
        )
    try:
        reader = Reader.try_create(kind, io.BytesIO(data), context=_context())
        if reader is None:
            return Signal(
                SignalKind.C2PA, SignalStatus.ALLOWED, "no C2PA manifest", extra=_extra(False)
            )
        with reader:
            return manifest_signal(reader.json(), reader.get_validation_state())
    except (C2paError, ValueError, TypeError, KeyError, AttributeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return Signal(
            SignalKind.C2PA,
            SignalStatus.UNKNOWN,
            f"C2PA manifest unreadable: {exc}",
            # The reader does not say whether it failed on C2PA data or on the file itself; the
            # JUMBF label `c2pa` in the bytes tells a broken manifest from a broken image.
            extra=_extra(b"c2pa" in data, error=error),
        )
