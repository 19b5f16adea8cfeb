"""X-Robots-Tag response headers (and the same directives in page meta) as an AI-training signal.

Grammar (Google Search Central, "Robots meta tag, data-nosnippet, and X-Robots-Tag"): each header
value is a comma list of directives, optionally preceded by `<user-agent>:` which scopes the
directives after it, within that header value, to one crawler. Names and values are
case-insensitive and the header may repeat. `noai` and `noimageai` (the DeviantArt/Spawning
convention) reserve an image from AI training; indexing directives (`noindex`, `none`,
`nofollow`, ...) say nothing about training and are reported, not enforced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provenance.domain import Signal, SignalKind, SignalStatus, worst_status

HEADER_NAME = "x-robots-tag"
AI_OPT_OUTS = frozenset({"noai", "noimageai"})
# Directives that legitimately carry a `name: value` pair; their name is not a user agent.
_VALUED_DIRECTIVES = frozenset(
    {
        "unavailable_after",
        "max-snippet",
        "max-image-preview",
        "max-video-preview",
        "indexifembedded",
    }
)
_SCOPE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*:\s*(.*)$", re.DOTALL)
_EVIDENCE_CAP = 16 * 1024


@dataclass(frozen=True)
class Directive:
    """One directive, lower-case, with the user agent it is scoped to (None: every agent)."""

    agent: str | None
    name: str


def parse_directives(value: str) -> list[Directive]:
    """Directives of one X-Robots-Tag value (or robots meta content), in order.

    A `bot:` prefix scopes the items that follow it in the same value to `bot`.
    """
    agent: str | None = None
    found: list[Directive] = []
    for raw in value.split(","):
        item = raw.strip()
        match = _SCOPE.match(item)
        if match and match.group(1).lower() not in _VALUED_DIRECTIVES:
            agent = match.group(1).lower()
            item = match.group(2).strip()
        name = item.split(":", 1)[0].strip().lower()
        if name:
            found.append(Directive(agent, name))
    return found


def directives_signal(
    directives: Sequence[Directive],
    tokens: Sequence[str],
    source: str,
    evidence: str | None,
    absent_detail: str,
) -> Signal:
    """The verdict of robots-style directives for `tokens` (shared by headers and page meta).

    Unscoped `noai`/`noimageai` reserve for everyone; scoped ones only for the matching token.
    With no tokens, only unscoped directives count.
    """
    if not directives:
        return Signal(
            SignalKind.X_ROBOTS_TAG, SignalStatus.ALLOWED, absent_detail, source, evidence=evidence
        )
    wanted = [t.strip().lower() for t in tokens if t.strip()]
    unscoped = {d.name for d in directives if d.agent is None}
    per_token: dict[str, SignalStatus] = {}
    for token in wanted:
        names = unscoped | {d.name for d in directives if d.agent == token}
        per_token[token] = SignalStatus.RESERVED if names & AI_OPT_OUTS else SignalStatus.ALLOWED
    general = SignalStatus.RESERVED if unscoped & AI_OPT_OUTS else SignalStatus.ALLOWED
    status = worst_status([general, *per_token.values()])
    return Signal(
        SignalKind.X_ROBOTS_TAG,
        status,
        _describe(directives, wanted),
        source,
        tokens=per_token,
        evidence=evidence,
    )


def _describe(directives: Iterable[Directive], wanted: Sequence[str]) -> str:
    """`noai, googlebot: noindex (not an AI opt-out), otherbot: noai (other agent)`."""
    parts: list[str] = []
    for d in directives:
        text = d.name if d.agent is None else f"{d.agent}: {d.name}"
        if d.agent is not None and d.agent not in wanted:
            text += " (other agent)"
        elif d.name not in AI_OPT_OUTS:
            text += " (not an AI opt-out)"
        if text not in parts:
            parts.append(text)
    return ", ".join(parts)


def x_robots_tag_signal(
    headers: Sequence[tuple[str, str]], tokens: Sequence[str], source: str
) -> Signal:
    """Verdict of every X-Robots-Tag header in `headers` for the user-agent `tokens`.

    No header gives ALLOWED with detail "no X-Robots-Tag"; `evidence` is the header lines read.
    Scoping restarts with each header line, as each line is its own value.
    """
    lines: list[str] = []
    directives: list[Directive] = []
    for name, value in headers:
        if str(name).strip().lower() != HEADER_NAME:
            continue
        text = str(value)
        lines.append(f"X-Robots-Tag: {text}")
        directives.extend(parse_directives(text))
    evidence = "\n".join(lines)[:_EVIDENCE_CAP] if lines else None
    absent = "X-Robots-Tag without directives" if lines else "no X-Robots-Tag"
    return directives_signal(directives, tokens, source, evidence, absent)
