"""IPTC/PLUS `plus:DataMining` in XMP as a training signal, and EXIF/XMP rights as plain facts.

Vocabulary: PLUS Coalition "Data Mining" (https://ns.useplus.org/ldf/vocab/DMI), used by the IPTC
Photo Metadata Standard 2023.1+ (property "Data Mining", `plus:DataMining`, with
`plus:OtherConstraints` for free-text constraints):
DMI-UNSPECIFIED, DMI-ALLOWED, DMI-PROHIBITED-AIMLTRAINING, DMI-PROHIBITED-GENAIMLTRAINING,
DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING, DMI-PROHIBITED, DMI-SEE-CONSTRAINT,
DMI-SEE-EMBEDDED-RIGHTS-EXPR, DMI-SEE-LINKED-RIGHTS-EXPR.

XMP is read with Pillow's `getxmp()`, which needs defusedxml and returns `{}` without it: an
empty result while XMP bytes are present is an error (UNKNOWN), never "no field".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import ParseError

from PIL import Image, ImageFile, IptcImagePlugin

from provenance.domain import Signal, SignalKind, SignalStatus, worst_status

_EXCERPT_CHARS = 4096
_PROHIBITION_WORDS = re.compile(
    r"prohibit|not\s+(be\s+)?(allowed|permitted)|forbidden|no\s+ai\b|opt[\s-]?out", re.I
)
_EXIF_ARTIST, _EXIF_COPYRIGHT = 315, 33432
# IPTC-IIM (APP13) datasets: 2:80 By-line, 2:116 Copyright Notice, 2:110 Credit.
IIM_FACTS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("iim_byline", (2, 80)),
    ("iim_copyright", (2, 116)),
    ("iim_credit", (2, 110)),
)
# fact name -> local XMP property name (Pillow drops namespace prefixes).
XMP_FACTS: tuple[tuple[str, str], ...] = (
    ("creator", "creator"),  # dc:creator
    ("rights", "rights"),  # dc:rights
    ("web_statement", "WebStatement"),  # xmpRights:WebStatement
    ("usage_terms", "UsageTerms"),  # xmpRights:UsageTerms
    ("marked", "Marked"),  # xmpRights:Marked
    ("credit", "Credit"),  # photoshop:Credit
    ("source", "Source"),  # photoshop:Source
    ("copyright_owner", "CopyrightOwnerName"),  # plus:CopyrightOwner/CopyrightOwnerName
    ("licensor", "LicensorName"),  # plus:Licensor/LicensorName
    ("licensor_url", "LicensorURL"),  # plus:Licensor/LicensorURL
    ("creator_url", "CiUrlWork"),  # Iptc4xmpCore:CreatorContactInfo/CiUrlWork
)


@dataclass(frozen=True)
class XmpRead:
    """What reading an image's XMP gave: the parsed tree, the raw packet, or the error."""

    tree: Mapping[str, Any]
    raw: bytes | None
    error: str | None


def xmp_packet(img: Image.Image) -> bytes | None:
    """The raw XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700)."""
    info = img.info
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = info.get(key)
        if isinstance(value, str):
            return value.encode("utf-8", errors="replace")
        if isinstance(value, bytes | bytearray) and value:
            return bytes(value)
    tag = getattr(img, "tag_v2", None)
    value = tag.get(700) if tag is not None else None
    return bytes(value) if isinstance(value, bytes | bytearray) and value else None


def read_xmp(img: Image.Image) -> XmpRead:
    """Parse the image's XMP once; an unparseable or unreadable packet is an error, not `{}`."""
    raw = xmp_packet(img)
    if raw is None:
        return XmpRead({}, None, None)
    getxmp = getattr(img, "getxmp", None)
    if getxmp is None:
        return XmpRead({}, raw, "this Pillow cannot read XMP (no getxmp)")
    try:
        tree = getxmp()
    except (ParseError, ValueError, TypeError, AttributeError, ImportError) as exc:
        return XmpRead({}, raw, f"XMP unparseable: {type(exc).__name__}: {exc}")
    if not tree:
        return XmpRead(
            {}, raw, "XMP present but getxmp() returned nothing (is defusedxml installed?)"
        )
    return XmpRead(tree, raw, None)


def find_values(tree: Any, name: str) -> list[Any]:
    """Every value stored under the local property `name`, anywhere in the XMP tree."""
    found: list[Any] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == name:
                    found.append(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def texts(value: Any) -> list[str]:
    """Plain strings of an XMP value: a string, an Alt/Seq/Bag of `li`, or lang/text items."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [t for item in value for t in texts(item)]
    if isinstance(value, dict):
        if "text" in value:
            return texts(value["text"])
        return [
            t
            for key, item in value.items()
            if key not in ("lang", "parseType", "about")
            for t in texts(item)
        ]
    return []


def _excerpt(raw: bytes | None, names: tuple[str, ...]) -> str | None:
    """The lines of the XMP packet around the named properties (the evidence)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    spans = [m.start() for n in names for m in re.finditer(re.escape(n), text)]
    if not spans:
        return None
    start, end = max(0, min(spans) - 200), min(len(text), max(spans) + 400)
    return text[start:end][:_EXCERPT_CHARS]


def classify_dmi(value: str, constraints: list[str]) -> tuple[SignalStatus, str]:
    """Status of one DataMining value (a DMI code or its vocabulary URI)."""
    code = value.strip().rstrip("/").rsplit("/", 1)[-1].upper()
    if code.startswith("DMI-PROHIBITED"):
        return SignalStatus.RESERVED, code
    if code == "DMI-ALLOWED":
        return SignalStatus.ALLOWED, code
    if code in ("DMI-UNSPECIFIED", ""):
        return SignalStatus.ALLOWED, "no data-mining statement"
    if code.startswith("DMI-SEE-"):
        said = " / ".join(constraints)
        if said and _PROHIBITION_WORDS.search(said):
            return SignalStatus.RESERVED, f"{code}: {said}"
        # Free text that does not clearly prohibit cannot be read as a permission.
        return (
            SignalStatus.UNKNOWN,
            f"{code}: {said}" if said else f"{code} without a readable constraint",
        )
    return SignalStatus.UNKNOWN, f"unrecognised data-mining value {value.strip()!r}"


def iptc_from_xmp(read: XmpRead) -> Signal:
    """The IPTC/PLUS data-mining signal of already-read XMP."""
    names = ("DataMining", "OtherConstraints")
    if read.error is not None:
        return Signal(
            SignalKind.IPTC,
            SignalStatus.UNKNOWN,
            read.error,
            extra={"data_mining": None, "other_constraints": None, "error": read.error},
            evidence=_excerpt(read.raw, names),
        )
    values = [t for v in find_values(read.tree, "DataMining") for t in texts(v)]
    raw_constraints = find_values(read.tree, "OtherConstraints")
    constraints = [t for v in raw_constraints for t in texts(v)]
    other: Any = raw_constraints[0] if len(raw_constraints) == 1 else (raw_constraints or None)
    extra: dict[str, Any] = {
        "data_mining": values[0] if len(values) == 1 else (values or None),
        "other_constraints": other,
    }
    if not values:
        return Signal(
            SignalKind.IPTC, SignalStatus.ALLOWED, "no data-mining statement", extra=extra
        )
    verdicts = [classify_dmi(v, constraints) for v in values]
    status = worst_status([s for s, _ in verdicts])
    detail = "; ".join(dict.fromkeys(d for _, d in verdicts))
    return Signal(SignalKind.IPTC, status, detail, extra=extra, evidence=_excerpt(read.raw, names))


def iptc_signal(img: Image.Image) -> Signal:
    """IPTC/PLUS `plus:DataMining` verdict of a decoded image. Never raises.

    DMI-PROHIBITED-* -> RESERVED; DMI-ALLOWED -> ALLOWED; DMI-UNSPECIFIED or no field -> ALLOWED
    "no data-mining statement"; DMI-SEE-* -> UNKNOWN unless `plus:OtherConstraints` clearly
    prohibits; XMP that cannot be read -> UNKNOWN.
    """
    return iptc_from_xmp(read_xmp(img))


def _one_or_many(values: list[str]) -> str | list[str]:
    unique = list(dict.fromkeys(values))
    return unique[0] if len(unique) == 1 else unique


def facts_from(img: Image.Image, read: XmpRead) -> dict[str, Any]:
    """Rights facts of a decoded image given its already-read XMP (only keys present)."""
    facts: dict[str, Any] = {}
    try:
        exif = img.getexif()
    except (OSError, ValueError, SyntaxError, TypeError):
        exif = None
    if exif is not None:
        for key, tag in (("exif_artist", _EXIF_ARTIST), ("exif_copyright", _EXIF_COPYRIGHT)):
            value = exif.get(tag)
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            if isinstance(value, str) and value.strip(" \x00"):
                facts[key] = value.strip(" \x00")
    facts.update(_iim_facts(img))
    for fact, name in XMP_FACTS:
        found = [t for v in find_values(read.tree, name) for t in texts(v)]
        if found:
            facts[fact] = _one_or_many(found)
    return facts


def _iim_facts(img: Image.Image) -> dict[str, Any]:
    """By-line, copyright notice and credit from legacy IPTC-IIM, when the file has it."""
    if not isinstance(img, ImageFile.ImageFile) or (
        "photoshop" not in img.info and not hasattr(img, "tag_v2")
    ):
        return {}
    try:
        iim = IptcImagePlugin.getiptcinfo(img) or {}
    except (OSError, ValueError, SyntaxError, IndexError, TypeError):
        return {}
    facts: dict[str, Any] = {}
    for fact, key in IIM_FACTS:
        raw = iim.get(key)
        items = raw if isinstance(raw, list) else [raw]
        found = [i.decode("utf-8", errors="replace").strip() for i in items if isinstance(i, bytes)]
        if any(found):
            facts[fact] = _one_or_many([f for f in found if f])
    return facts


def rights_facts(img: Image.Image) -> dict[str, Any]:
    """EXIF Artist/Copyright, IPTC-IIM By-line/Copyright/Credit and XMP dc:creator, dc:rights,
    xmpRights:WebStatement/UsageTerms, photoshop:Credit, PLUS licensor/owner, IPTC creator URL,
    as plain strings or lists (only keys present)."""
    return facts_from(img, read_xmp(img))
