"""RSL 1.0 (Really Simple Licensing, rslstandard.org): where licenses are declared, and what a
license XML says about AI training for one URL.

Discovery: `License:` lines in robots.txt and `Link: <...>; rel="license";
type="application/rsl+xml"` response headers. The XML is parsed with defusedxml: DTD entity
declarations and external references are refused (reported as UNKNOWN with the error).

Verdict for AI training from the `<content>` block matching the URL (the longest matching
URL pattern; `*` and a trailing `$` as in robots.txt):
- a `<prohibits type="usage">` covering training (`ai-train`, `ai-all`, `all`) -> RESERVED;
- a `<permits type="usage">` that does not cover training -> RESERVED (not among the
  permitted uses);
- training permitted (or no usage restriction) for free -> ALLOWED;
- permitted only under terms (payment other than free, attribution, a license server,
  encrypted content) -> RESERVED, terms recorded in `extra` with `conditional: True`:
  conditional permission is not free permission; a policy may declare the license held.
- no matching `<content>` block -> ALLOWED "no statement"; malformed -> UNKNOWN.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from provenance.domain import Signal, SignalKind, SignalStatus
from provenance.signals.robots import RobotsDoc

RSL_NAMESPACE = "https://rslstandard.org/rsl"
RSL_MEDIA_TYPE = "application/rsl+xml"
TRAINING_USAGES = frozenset({"all", "ai-all", "ai-train"})
FREE_PAYMENTS = frozenset({"", "free"})
MAX_RSL_BYTES = 2 * 1024 * 1024


def _link_members(value: str) -> list[str]:
    """Split a Link header value on commas outside <...> and quoted strings."""
    members: list[str] = []
    current: list[str] = []
    in_uri = in_quote = False
    for char in value:
        if char == "<" and not in_quote:
            in_uri = True
        elif char == ">" and not in_quote:
            in_uri = False
        elif char == '"' and not in_uri:
            in_quote = not in_quote
        elif char == "," and not in_uri and not in_quote:
            members.append("".join(current))
            current = []
            continue
        current.append(char)
    members.append("".join(current))
    return members


def _link_params(member: str) -> tuple[str, dict[str, str]] | None:
    match = re.match(r"\s*<([^>]*)>(.*)$", member, re.DOTALL)
    if match is None:
        return None
    params: dict[str, str] = {}
    for part in match.group(2).split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"').strip()
    return match.group(1).strip(), params


def rsl_locations(
    doc: RobotsDoc | None, headers: Sequence[tuple[str, str]], base_url: str | None = None
) -> list[str]:
    """License XML URLs declared by robots.txt `License:` lines and RSL `Link` headers.

    Relative references resolve against `base_url` (the response's URL) or the robots.txt
    URL. Order of appearance, duplicates removed. Never raises.
    """
    found: list[str | None] = []
    if doc is not None and doc.state == "parsed":
        found += [_resolve(doc.source, value) for value in doc.licenses]
    base = base_url or (doc.source if doc is not None else "")
    for name, value in headers:
        if name.strip().lower() != "link":
            continue
        for member in _link_members(value):
            parsed = _link_params(member)
            if parsed is None:
                continue
            target, params = parsed
            rels = params.get("rel", "").lower().split()
            if "license" in rels and params.get("type", "").lower() == RSL_MEDIA_TYPE and target:
                found.append(_resolve(base, target))
    return [url for url in dict.fromkeys(found) if url]


def _resolve(base: str, reference: str) -> str | None:
    """`reference` made absolute against `base`; None if either is not a usable URL."""
    try:
        return urljoin(base, reference) if base else reference
    except ValueError:
        return None


@dataclass
class _Terms:
    permits: set[str] = field(default_factory=set)
    prohibits: set[str] = field(default_factory=set)
    has_permits: bool = False
    payments: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "permits": sorted(self.permits),
            "prohibits": sorted(self.prohibits),
            "payment": self.payments,
        }


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _values(element: ET.Element) -> set[str]:
    # Deployed files separate usage values with spaces or commas; accept both.
    return {v.lower() for v in re.split(r"[,\s]+", element.text or "") if v}


def _read_license(element: ET.Element) -> _Terms:
    terms = _Terms()
    for child in element:
        name = _local(child.tag)
        kind = (child.get("type") or "usage").strip().lower()
        if name == "permits" and kind == "usage":
            terms.has_permits = True
            terms.permits |= _values(child)
        elif name == "prohibits" and kind == "usage":
            terms.prohibits |= _values(child)
        elif name == "payment":
            payment: dict[str, Any] = {"type": (child.get("type") or "free").strip().lower()}
            for part in child:
                text = (part.text or "").strip()
                if text:
                    payment[_local(part.tag)] = text
                if part.get("currency"):
                    payment["currency"] = part.get("currency")
            terms.payments.append(payment)
    return terms


def _pattern_matches(pattern: str, url: str) -> bool:
    target = url
    if pattern.startswith("/"):
        parts = urlsplit(url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    else:
        pattern_parts, url_parts = urlsplit(pattern), urlsplit(url)
        if pattern_parts.netloc.lower() != url_parts.netloc.lower():
            return False
        pattern = pattern_parts.path or "/"
        pattern += "?" + pattern_parts.query if pattern_parts.query else ""
        target = (url_parts.path or "/") + ("?" + url_parts.query if url_parts.query else "")
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.match(regex + ("$" if anchored else ""), target) is not None


def _matching_content(root: ET.Element, url: str) -> ET.Element | None:
    best: tuple[int, ET.Element] | None = None
    for element in root.iter():
        if _local(element.tag) != "content":
            continue
        pattern = (element.get("url") or "").strip()
        try:
            if not pattern or not _pattern_matches(pattern, url):
                continue
        except ValueError:
            continue
        if best is None or len(pattern) > best[0]:
            best = (len(pattern), element)
    return best[1] if best else None


def _verdict(content: ET.Element) -> tuple[SignalStatus, str, dict[str, Any]]:
    licenses = [_read_license(el) for el in content if _local(el.tag) == "license"]
    server = (content.get("server") or "").strip()
    encrypted = (content.get("encrypted") or "").strip().lower() == "true"
    extra: dict[str, Any] = {"terms": [t.to_json() for t in licenses]}
    if server:
        extra["license_server"] = server
    if not licenses:
        return SignalStatus.ALLOWED, "no statement (no license element)", extra
    if any(t.prohibits & TRAINING_USAGES for t in licenses):
        return SignalStatus.RESERVED, "prohibits ai-train", extra
    permitting = [t for t in licenses if not t.has_permits or t.permits & TRAINING_USAGES]
    if not permitting:
        return SignalStatus.RESERVED, "ai-train not among permitted uses", extra
    free = [t for t in permitting if all(p["type"] in FREE_PAYMENTS for p in t.payments)]
    if free and not server and not encrypted:
        return SignalStatus.ALLOWED, "permits ai-train", extra
    conditions = sorted({p["type"] for t in permitting for p in t.payments} - FREE_PAYMENTS)
    if server:
        conditions.append("license server")
    if encrypted:
        conditions.append("encrypted")
    extra["conditional"] = True
    detail = "permits ai-train only under terms: " + ", ".join(conditions)
    return SignalStatus.RESERVED, detail, extra


def parse_rsl(xml: bytes, source: str, url: str) -> Signal:
    """The RSL verdict on AI training for `url` from a license document (kind RSL).

    Never raises: malformed, hostile (entities, external references) or non-RSL XML is
    UNKNOWN with the error in the detail.
    """
    evidence = xml[:MAX_RSL_BYTES].decode("utf-8", errors="replace")

    def signal(status: SignalStatus, detail: str, extra: dict[str, Any] | None = None) -> Signal:
        return Signal(
            SignalKind.RSL, status, detail, source or None, extra=extra or {}, evidence=evidence
        )

    if len(xml) > MAX_RSL_BYTES:
        return signal(SignalStatus.UNKNOWN, f"license document larger than {MAX_RSL_BYTES} bytes")
    try:
        root = fromstring(xml)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        return signal(SignalStatus.UNKNOWN, f"unreadable RSL document: {type(exc).__name__}: {exc}")
    if _local(root.tag) not in ("rsl", "rss"):
        return signal(SignalStatus.UNKNOWN, f"not an RSL document (root <{_local(root.tag)}>)")
    content = _matching_content(root, url)
    if content is None:
        return signal(SignalStatus.ALLOWED, "no statement (no content block matches the URL)")
    status, detail, extra = _verdict(content)
    extra["content_url"] = content.get("url")
    return signal(status, detail, extra)
