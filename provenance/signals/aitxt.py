"""ai.txt: the robots.txt grammar served at `/ai.txt`, evaluated for the same tokens.

A missing ai.txt (any 4xx) states nothing: ALLOWED with detail "no ai.txt". An unreachable
one (5xx, no response) is UNKNOWN. The document itself is read with `robots.parse_robots` /
`robots.robots_from_response`.
"""

from __future__ import annotations

from collections.abc import Sequence

from provenance.domain import Signal, SignalKind, SignalStatus
from provenance.signals.robots import RobotsDoc, token_verdicts, verdict_signal


def aitxt_signal(doc: RobotsDoc, url: str, tokens: Sequence[str]) -> Signal:
    """The ai.txt verdict for `url` per token (kind AI_TXT); status is the worst."""
    if doc.state == "allow-all":
        verdicts = {token.lower(): SignalStatus.ALLOWED for token in tokens}
        return Signal(
            kind=SignalKind.AI_TXT,
            status=SignalStatus.ALLOWED,
            detail=f"no ai.txt (HTTP {doc.http_status})",
            source=doc.source or None,
            tokens=verdicts,
            evidence=doc.evidence(),
        )
    return verdict_signal(SignalKind.AI_TXT, doc, token_verdicts(doc, url, tokens), "ai.txt")
