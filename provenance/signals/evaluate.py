"""Every URL-level signal for one URL, combined from what was read: pure, no I/O.

Inputs are the host documents (robots.txt, ai.txt, tdmrep.json, RSL license XML), the
response headers of the URL and, for HTML pages, their meta tags. An input that was not
looked at is passed as None; every kind that depends only on such inputs comes out
`unknown` with detail "not checked" — never `allowed`. Callers: `check-url`, `fetch` (after
its GET, with the response headers), `signals refresh` (host documents, optionally headers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from provenance.domain import (
    URL_LEVEL_KINDS,
    Signal,
    SignalKind,
    SignalStatus,
    worst_status,
)
from provenance.signals.aitxt import aitxt_signal
from provenance.signals.content_signal import content_signal
from provenance.signals.content_usage import (
    combine_content_usage,
    content_usage_from_headers,
    content_usage_from_robots,
)
from provenance.signals.headers import x_robots_tag_signal
from provenance.signals.html import meta_robots_signal
from provenance.signals.robots import RobotsDoc, robots_signal
from provenance.signals.rsl import parse_rsl, rsl_locations
from provenance.signals.tdmrep import TdmRepDoc, tdmrep_signal

NOT_CHECKED = "not checked"
HEADERS_NOT_CHECKED = "response headers not checked"
_EVIDENCE_JOIN = "\n"


def not_checked(kind: SignalKind, what: str = "") -> Signal:
    """The fail-closed placeholder for a kind whose inputs were not looked at."""
    detail = f"{NOT_CHECKED} ({what})" if what else NOT_CHECKED
    return Signal(kind, SignalStatus.UNKNOWN, detail)


def merge_signals(kind: SignalKind, parts: Sequence[Signal]) -> Signal:
    """One signal of `kind` from several statements of it: worst status, worst per token,
    details and evidence joined, the first source and the first statement's extra facts."""
    if len(parts) == 1:
        return parts[0]
    tokens: dict[str, SignalStatus] = {}
    for part in parts:
        for token, status in part.tokens.items():
            tokens[token] = worst_status([tokens.get(token, status), status])
    evidence = _EVIDENCE_JOIN.join(p.evidence for p in parts if p.evidence) or None
    return Signal(
        kind=kind,
        status=worst_status([p.status for p in parts]),
        detail="; ".join(p.detail for p in parts if p.detail),
        source=next((p.source for p in parts if p.source), None),
        tokens=tokens,
        extra=parts[0].extra,
        evidence=evidence,
    )


def _note_headers_unchecked(signal: Signal) -> Signal:
    # The host document was read but the URL's own headers (which may override it) were not.
    return replace(signal, detail=f"{signal.detail} ({HEADERS_NOT_CHECKED})")


def _x_robots(
    url: str,
    tokens: Sequence[str],
    headers: Sequence[tuple[str, str]] | None,
    html_meta: Mapping[str, str] | None,
) -> Signal:
    parts: list[Signal] = []
    if headers is not None:
        parts.append(x_robots_tag_signal(headers, tokens, url))
    if html_meta is not None:
        parts.append(meta_robots_signal(html_meta, tokens, url))
    if not parts:
        return not_checked(SignalKind.X_ROBOTS_TAG, HEADERS_NOT_CHECKED)
    return merge_signals(SignalKind.X_ROBOTS_TAG, parts)


def _tdmrep(
    url: str,
    tdmrep: TdmRepDoc | None,
    headers: Sequence[tuple[str, str]] | None,
    html_meta: Mapping[str, str] | None,
) -> Signal:
    if tdmrep is None and headers is None and html_meta is None:
        return replace(not_checked(SignalKind.TDMREP), extra={"reservation": None, "policy": None})
    signal = tdmrep_signal(tdmrep, headers or [], url, html_meta)
    if headers is None and signal.status is not SignalStatus.RESERVED:
        return _note_headers_unchecked(signal)
    return signal


def _content_usage(
    url: str,
    tokens: Sequence[str],
    robots: RobotsDoc | None,
    headers: Sequence[tuple[str, str]] | None,
) -> Signal:
    parts: list[Signal] = []
    if robots is not None:
        parts.append(content_usage_from_robots(robots, url, tokens))
    if headers is not None:
        parts.append(content_usage_from_headers(headers, url))
    if not parts:
        return not_checked(SignalKind.CONTENT_USAGE)
    signal = combine_content_usage(parts)
    return _partial(signal, robots_checked=robots is not None, headers_checked=headers is not None)


def _rsl(
    url: str,
    robots: RobotsDoc | None,
    headers: Sequence[tuple[str, str]] | None,
    rsl_docs: Mapping[str, bytes] | None,
) -> Signal:
    if robots is None and headers is None:
        return not_checked(SignalKind.RSL)
    locations = rsl_locations(robots, headers or [], url)
    if not locations:
        signal = Signal(SignalKind.RSL, SignalStatus.ALLOWED, "no statement (no RSL license named)")
    else:
        parts = [
            _rsl_document(url, location, (rsl_docs or {}).get(location)) for location in locations
        ]
        signal = merge_signals(SignalKind.RSL, parts)
    return _partial(signal, robots_checked=robots is not None, headers_checked=headers is not None)


def _rsl_document(url: str, location: str, body: bytes | None) -> Signal:
    if body is None:
        return Signal(
            SignalKind.RSL, SignalStatus.UNKNOWN, f"license {location} not read", location
        )
    return parse_rsl(body, location, url)


def _partial(signal: Signal, *, robots_checked: bool, headers_checked: bool) -> Signal:
    """A kind read from robots.txt and headers when only one of them was looked at.

    A reservation found stands. Without robots.txt (where these statements mostly live) the
    kind is `unknown`; without the headers (which can only add to or override the host
    document) the host verdict stands, with a detail saying the headers were not checked.
    """
    if signal.status is SignalStatus.RESERVED or (robots_checked and headers_checked):
        return signal
    if not robots_checked:
        return replace(
            signal,
            status=SignalStatus.UNKNOWN,
            detail=f"{signal.detail} (robots.txt {NOT_CHECKED})",
            tokens={t: SignalStatus.UNKNOWN for t in signal.tokens},
        )
    return _note_headers_unchecked(signal)


def url_level_signals(
    url: str,
    tokens: Sequence[str],
    *,
    robots: RobotsDoc | None,
    aitxt: RobotsDoc | None,
    tdmrep: TdmRepDoc | None,
    rsl_docs: Mapping[str, bytes] | None,
    headers: Sequence[tuple[str, str]] | None,
    html_meta: Mapping[str, str] | None = None,
) -> list[Signal]:
    """Exactly one Signal per URL-level kind, in `URL_LEVEL_KINDS` order.

    `tokens`: lower-case user-agent tokens; each token-scoped status is the worst over them.
    `rsl_docs`: license URL -> body of the RSL documents fetched (a license named in
    robots.txt or a Link header but missing here is `unknown`). `headers`: the URL's response
    headers, None when not requested. With headers missing, kinds that headers can override
    (tdmrep, content-usage, rsl) keep the host document's verdict with a detail saying the
    headers were not checked, and x-robots-tag is `unknown`.
    """
    by_kind = {
        SignalKind.ROBOTS: robots_signal(robots, url, tokens)
        if robots is not None
        else not_checked(SignalKind.ROBOTS, "robots.txt"),
        SignalKind.X_ROBOTS_TAG: _x_robots(url, tokens, headers, html_meta),
        SignalKind.TDMREP: _tdmrep(url, tdmrep, headers, html_meta),
        SignalKind.AI_TXT: aitxt_signal(aitxt, url, tokens)
        if aitxt is not None
        else not_checked(SignalKind.AI_TXT, "ai.txt"),
        SignalKind.CONTENT_SIGNAL: content_signal(robots, url, tokens)
        if robots is not None
        else not_checked(SignalKind.CONTENT_SIGNAL, "robots.txt"),
        SignalKind.CONTENT_USAGE: _content_usage(url, tokens, robots, headers),
        SignalKind.RSL: _rsl(url, robots, headers, rsl_docs),
    }
    return [by_kind[kind] for kind in URL_LEVEL_KINDS]


def verdict(signals: Sequence[Signal]) -> SignalStatus:
    """The combined verdict: any reserved wins, then any unknown; nothing checked is unknown."""
    return worst_status(tuple(s.status for s in signals))
