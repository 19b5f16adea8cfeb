"""Content Signals (contentsignals.org, CC0): `Content-Signal:` lines in robots.txt groups.

`Content-Signal: search=yes, ai-train=no` states preferences for the crawlers of its group;
the keys are `search`, `ai-input` and `ai-train`, the values `yes`/`no`, and an absent key
states nothing. The group that applies to a token is the one robots.txt selects for it.
Only `ai-train` decides the verdict here: `no` reserves, `yes` allows, absent is
"no statement" (allowed). Keys and values are read case-insensitively; a value other than
yes/no states nothing; when a key is stated twice with different values, `no` wins (the more
restrictive reading of a contradictory file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from provenance.domain import Signal, SignalKind, SignalStatus, worst_status
from provenance.signals.robots import RobotsDoc, token_plan

TRAINING_KEY = "ai-train"
NO_STATEMENT = "no statement"


def parse_content_signal(values: Sequence[str]) -> dict[str, str]:
    """Merge `Content-Signal` line values into {key: "yes"|"no"} (lower-case).

    Never raises: malformed members (no `=`, empty key, other values) are skipped.
    """
    prefs: dict[str, str] = {}
    for value in values:
        for member in value.split(","):
            key, sep, raw = member.partition("=")
            key, raw = key.strip().lower(), raw.strip().lower()
            if not sep or not key or raw not in ("yes", "no"):
                continue
            if prefs.get(key) != "no":
                prefs[key] = raw
    return prefs


def _describe(prefs: Mapping[str, str]) -> str:
    if not prefs:
        return NO_STATEMENT
    return ", ".join(f"{key}={prefs[key]}" for key in sorted(prefs))


def _token_status(prefs: Mapping[str, str]) -> SignalStatus:
    if prefs.get(TRAINING_KEY) == "no":
        return SignalStatus.RESERVED
    return SignalStatus.ALLOWED


def content_signal(doc: RobotsDoc, url: str, tokens: Sequence[str]) -> Signal:
    """The Content-Signal verdict per token (kind CONTENT_SIGNAL); status is the worst.

    `url` is accepted for symmetry with the other robots.txt signals: Content Signals apply
    to the whole group, not to paths, so the result is memoized per document and token list.
    """
    key = ("content-signal", tuple(tokens))
    cached = doc.memo.get(key)
    if cached is None:
        cached = _group_signal(doc, tokens)
        doc.memo[key] = cached
    return cast(Signal, cached)


def _group_signal(doc: RobotsDoc, tokens: Sequence[str]) -> Signal:
    plan = token_plan(doc, tokens)
    if doc.state == "unreachable":
        return Signal(
            kind=SignalKind.CONTENT_SIGNAL,
            status=SignalStatus.UNKNOWN,
            detail=f"robots.txt unreachable: {doc.error}",
            source=doc.source or None,
            tokens=dict.fromkeys(plan.tokens, SignalStatus.UNKNOWN),
            evidence=doc.evidence(),
        )
    per_group = [parse_content_signal(doc.lines_for(probe).content_signal) for probe in plan.probes]
    per_token = {t: per_group[slot] for t, slot in zip(plan.tokens, plan.slots, strict=True)}
    verdicts = {token: _token_status(prefs) for token, prefs in per_token.items()}
    return Signal(
        kind=SignalKind.CONTENT_SIGNAL,
        status=worst_status(tuple(verdicts.values())),
        detail=_summarize(per_token),
        source=doc.source or None,
        tokens=verdicts,
        extra={"preferences": {t: dict(p) for t, p in per_token.items() if p}},
        evidence=doc.evidence(),
    )


def _summarize(per_token: Mapping[str, Mapping[str, str]]) -> str:
    if not per_token:
        return "no user-agent tokens evaluated"
    descriptions = {token: _describe(prefs) for token, prefs in per_token.items()}
    distinct = sorted(set(descriptions.values()))
    if len(distinct) == 1:
        return distinct[0]
    parts = []
    for text in distinct:
        names = [t for t, d in descriptions.items() if d == text]
        parts.append(f"{text} ({', '.join(names)})")
    return "; ".join(parts)
