"""TDM Reservation Protocol (TDMRep), W3C community group final report (2024-05-10),
https://www.w3.org/community/reports/tdmrep/CG-FINAL-tdmrep-20240510/ .

Three techniques, in the report's processing priority ("Processing priority" section): the
`/.well-known/tdmrep.json` file on the origin server, superseded by the `tdm-reservation` /
`tdm-policy` response header fields, superseded by `<meta name="tdm-reservation">` /
`<meta name="tdm-policy">` in HTML content. `tdm-reservation` is 1 (reserved) or 0 (not
reserved); any other value is a protocol error and counts as unset, so the next technique down is
consulted. In the file, the first rule whose `location` pattern (robots.txt style: `*` and a
final `$`) matches the URL path wins; no match means unset.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from provenance.domain import Signal, SignalKind, SignalStatus

WELL_KNOWN_PATH = "/.well-known/tdmrep.json"
MAX_TDMREP_BYTES = 512 * 1024
MAX_RULES = 10_000
_EVIDENCE_CAP = 64 * 1024
DocState = Literal["parsed", "absent", "unreachable", "malformed"]
# RFC 3986 unreserved characters: their percent-encodings are decoded before matching.
_UNRESERVED_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True)
class TdmRule:
    """One rule of tdmrep.json. `reservation` is None when the value was not 0 or 1 (unset)."""

    location: str
    reservation: int | None
    policy: str | None


@dataclass(frozen=True)
class TdmRepDoc:
    """The outcome of reading `/.well-known/tdmrep.json`: parsed rules, or why there are none."""

    state: DocState
    rules: tuple[TdmRule, ...] = ()
    error: str | None = None
    source: str | None = None
    text: str | None = None


def reservation_value(value: Any) -> int | None:
    """1 or 0 from an int or a string such as " 1 "; anything else is unset (None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value in (0, 1) else None
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None


def _rule(item: Any) -> TdmRule | None:
    if not isinstance(item, dict):
        return None
    location = item.get("location")
    if not isinstance(location, str) or not location.strip():
        return None
    policy = item.get("tdm-policy")
    return TdmRule(
        location=location.strip(),
        reservation=reservation_value(item.get("tdm-reservation")),
        policy=policy.strip() if isinstance(policy, str) and policy.strip() else None,
    )


def parse_tdmrep(text: str, source: str | None = None) -> TdmRepDoc:
    """Parse the JSON text of a tdmrep.json: an array of rule objects.

    Rules without a usable `location` are skipped; a document that is not a JSON array is
    `malformed` (e.g. an HTML "soft 404" page).
    """
    evidence = text[:_EVIDENCE_CAP]
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        hint = " (looks like an HTML page)" if text.lstrip().startswith("<") else ""
        return TdmRepDoc("malformed", error=f"not JSON{hint}: {exc}", source=source, text=evidence)
    if not isinstance(data, list):
        return TdmRepDoc(
            "malformed", error="not a JSON array of rules", source=source, text=evidence
        )
    rules = tuple(r for r in (_rule(item) for item in data[:MAX_RULES]) if r is not None)
    return TdmRepDoc("parsed", rules=rules, source=source, text=evidence)


def tdmrep_from_response(
    source: str, http_status: int | None, body: bytes | None, error: str | None
) -> TdmRepDoc:
    """Classify a fetch of `/.well-known/tdmrep.json` (done elsewhere) and parse its body.

    2xx -> parsed or malformed; 4xx -> absent (the server does not implement the protocol);
    5xx, other statuses, or a network `error` -> unreachable; a body over the cap -> malformed.
    """
    if error is not None or http_status is None:
        return TdmRepDoc("unreachable", error=error or "no response", source=source)
    if 400 <= http_status < 500:
        return TdmRepDoc("absent", error=f"HTTP {http_status}", source=source)
    if not 200 <= http_status < 300:
        return TdmRepDoc("unreachable", error=f"HTTP {http_status}", source=source)
    raw = body or b""
    if len(raw) > MAX_TDMREP_BYTES:
        return TdmRepDoc("malformed", error=f"larger than {MAX_TDMREP_BYTES} bytes", source=source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return TdmRepDoc("malformed", error=f"not UTF-8: {exc}", source=source)
    return parse_tdmrep(text, source)


def _unescape_unreserved(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _UNRESERVED_PCT.sub(repl, text)


def _pattern_path(location: str) -> str:
    # Some publishers write absolute URLs as locations; only their path is a pattern.
    if "://" in location:
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "") or "/"
    return location


def _glob_match(pattern: str, text: str) -> bool:
    """Whole-string match where `*` is any run of characters; O(len(pattern) * len(text)) at
    worst (the greedy two-pointer algorithm), so hostile patterns cannot blow up."""
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != "*" and pattern[p] == text[t]:
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark, p = p, t, p + 1
        elif star >= 0:
            p, mark = star + 1, mark + 1
            t = mark
        else:
            return False
    return all(ch == "*" for ch in pattern[p:])


def location_matches(location: str, url: str) -> bool:
    """Does a rule's robots.txt-style `location` match the path (and query) of `url`?

    Case-sensitive prefix match, `*` = any run of characters, a final `$` anchors the end.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    target = _unescape_unreserved((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    # A pattern writes a literal `$` or `*` as %24 / %2A, so the URL's literal ones compare so.
    target = target.replace("$", "%24").replace("*", "%2A")
    pattern = _unescape_unreserved(_pattern_path(location))
    if pattern.endswith("$"):
        return _glob_match(pattern[:-1], target)
    return _glob_match(pattern + "*", target)


def matching_rule(doc: TdmRepDoc, url: str) -> TdmRule | None:
    """The first rule of `doc` whose location matches `url` (the report's "most specific")."""
    for rule in doc.rules:
        if location_matches(rule.location, url):
            return rule
    return None


def _first_header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if str(key).strip().lower() == name:
            return str(value).strip()
    return None


@dataclass(frozen=True)
class _Statement:
    reservation: int | None
    policy: str | None
    where: str
    source: str | None
    evidence: str | None


def _statements(
    doc: TdmRepDoc | None,
    headers: Sequence[tuple[str, str]],
    url: str,
    meta: Mapping[str, str] | None,
) -> list[_Statement]:
    """Every TDMRep statement that applies to `url`, highest priority first."""
    found: list[_Statement] = []
    if meta and ("tdm-reservation" in meta or "tdm-policy" in meta):
        res, pol = meta.get("tdm-reservation"), meta.get("tdm-policy")
        tags = [
            f'<meta name="{k}" content="{v}">'
            for k, v in (("tdm-reservation", res), ("tdm-policy", pol))
            if v
        ]
        found.append(
            _Statement(reservation_value(res), pol or None, "HTML meta", url, "\n".join(tags))
        )
    res_h, pol_h = _first_header(headers, "tdm-reservation"), _first_header(headers, "tdm-policy")
    if res_h is not None or pol_h is not None:
        lines = [
            f"{k}: {v}"
            for k, v in (("tdm-reservation", res_h), ("tdm-policy", pol_h))
            if v is not None
        ]
        found.append(
            _Statement(reservation_value(res_h), pol_h or None, "header", url, "\n".join(lines))
        )
    if doc is not None and doc.state == "parsed":
        rule = matching_rule(doc, url)
        if rule is not None:
            where = f'tdmrep.json rule "{rule.location}"'
            found.append(_Statement(rule.reservation, rule.policy, where, doc.source, doc.text))
    return found


def tdmrep_signal(
    doc: TdmRepDoc | None,
    headers: Sequence[tuple[str, str]],
    url: str,
    html_meta: Mapping[str, str] | None = None,
) -> Signal:
    """The TDMRep verdict for `url`: HTML meta over header fields over the tdmrep.json file.

    Reservation 1 -> RESERVED, 0 -> ALLOWED; nothing stated -> ALLOWED "no TDMRep statement";
    a file that could not be read or parsed (and nothing above it) -> UNKNOWN, as is a file
    that was not checked at all (`doc` None). `extra` always has `reservation` and `policy`.
    """
    statements = _statements(doc, headers, url, html_meta)
    for st in statements:
        if st.reservation is None:
            continue
        status = SignalStatus.RESERVED if st.reservation == 1 else SignalStatus.ALLOWED
        detail = f"tdm-reservation: {st.reservation} ({st.where})"
        if st.policy:
            detail += f"; tdm-policy: {st.policy}"
        extra = {"reservation": st.reservation, "policy": st.policy}
        return Signal(
            SignalKind.TDMREP, status, detail, st.source, extra=extra, evidence=st.evidence
        )
    unset = {"reservation": None, "policy": next((s.policy for s in statements if s.policy), None)}
    evidence = "\n".join(s.evidence for s in statements if s.evidence) or None
    if doc is None:
        detail = "tdmrep.json not checked; no tdm-reservation header or meta"
        return Signal(
            SignalKind.TDMREP, SignalStatus.UNKNOWN, detail, url, extra=unset, evidence=evidence
        )
    if doc.state in ("unreachable", "malformed"):
        detail = f"tdmrep.json {doc.state}: {doc.error}"
        return Signal(
            SignalKind.TDMREP,
            SignalStatus.UNKNOWN,
            detail,
            doc.source,
            extra=unset,
            evidence=doc.text,
        )
    detail = "no TDMRep statement" + (" (tdmrep.json absent)" if doc.state == "absent" else "")
    if statements:
        detail += "; tdm-reservation unset (" + ", ".join(s.where for s in statements) + ")"
    return Signal(
        SignalKind.TDMREP,
        SignalStatus.ALLOWED,
        detail,
        doc.source or url,
        extra=unset,
        evidence=evidence,
    )
