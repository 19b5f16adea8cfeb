"""IETF AI Preferences: the `Content-Usage` header and robots.txt rule.

Sources: draft-ietf-aipref-vocab (labels, processing, combining) and draft-ietf-aipref-attach
(header field, robots.txt rule with optional path), read at the WG repository
github.com/ietf-wg-aipref/drafts (vocab-07, attach-05, August 2026).

A statement is an RFC 9651 dictionary parsed with http-sf: a key's value is the Token `y`
(allow) or `n` (disallow); anything else, and a dictionary that fails to parse (uppercase keys
included), states nothing. Duplicate keys: the last one counts (RFC 9651). Statements are
combined per category: any disallow wins, else any allow, else nothing stated.

The current vocabulary has `train-ai` and `search`. Headers deployed from earlier drafts still
carry older labels; reading them is fail-closed: a disallow under any label that covers
training reserves (vocab-02/03 `train-genai`, vocab-01 `ai`/`genai`), and the former parent
categories (vocab-03/04 `bots`, vocab-02 `all`, vocab-01 `tdm`) apply when no training label
is stated, as their hierarchy defined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Literal, cast
from urllib.parse import quote, unquote, urlsplit

import http_sf

from provenance.domain import Signal, SignalKind, SignalStatus, worst_status
from provenance.signals.robots import RobotsDoc, TokenPlan, token_plan, url_problem

Pref = Literal["y", "n"]
TRAINING_LABELS = ("train-ai", "ai")
NARROWER_TRAINING_LABELS = ("train-genai", "genai")
PARENT_LABELS = ("bots", "all", "tdm")
NO_STATEMENT = "no statement"
HEADER_NAME = "content-usage"
_MEMO_KEY = "content-usage-rules"


def parse_preferences(value: str | bytes) -> tuple[dict[str, Pref], str | None]:
    """Parse one statement into {label: "y"|"n"}; returns (prefs, parse error or None).

    Never raises: a parse failure yields ({}, error) - no preference stated.
    """
    data = value.encode("utf-8", errors="replace") if isinstance(value, str) else value
    try:
        parsed = http_sf.parse(data, tltype="dictionary")
    except http_sf.StructuredFieldError as exc:
        return {}, str(exc)
    prefs: dict[str, Pref] = {}
    if not isinstance(parsed, dict):
        return prefs, "not a dictionary"
    for key, member in parsed.items():
        item = member[0] if isinstance(member, tuple) else None
        if isinstance(item, http_sf.Token) and str(item) in ("y", "n"):
            prefs[key] = "y" if str(item) == "y" else "n"
    return prefs, None


def training_preference(prefs: Mapping[str, Pref]) -> Pref | None:
    """The stated AI-training preference of one statement (None: nothing stated)."""
    if any(prefs.get(label) == "n" for label in TRAINING_LABELS + NARROWER_TRAINING_LABELS):
        return "n"
    for label in TRAINING_LABELS:
        if label in prefs:
            return prefs[label]
    parents = [prefs[label] for label in PARENT_LABELS if label in prefs]
    if "n" in parents:
        return "n"
    return "y" if parents else None


def _combine(prefs: Sequence[Pref | None]) -> Pref | None:
    if "n" in prefs:
        return "n"
    return "y" if "y" in prefs else None


def _status(pref: Pref | None) -> SignalStatus:
    return SignalStatus.RESERVED if pref == "n" else SignalStatus.ALLOWED


def _describe(prefs: Mapping[str, Pref]) -> str:
    return ", ".join(f"{k}={prefs[k]}" for k in sorted(prefs)) if prefs else NO_STATEMENT


def content_usage_from_headers(headers: Sequence[tuple[str, str]], source: str) -> Signal:
    """The Content-Usage response header(s) of one response (kind CONTENT_USAGE).

    Several field lines are combined into one value (RFC 9110 section 5.3) before parsing.
    """
    lines = [value for name, value in headers if name.strip().lower() == HEADER_NAME]
    evidence = "\n".join(f"Content-Usage: {value}" for value in lines) or None
    if not lines:
        return Signal(
            SignalKind.CONTENT_USAGE,
            SignalStatus.ALLOWED,
            f"{NO_STATEMENT} (no Content-Usage header)",
            source or None,
            extra={"stated": False},
        )
    prefs, error = parse_preferences(", ".join(lines))
    pref = training_preference(prefs)
    if error is not None:
        detail = f"{NO_STATEMENT} (unparseable Content-Usage: {error})"
    else:
        detail = _describe(prefs)
    return Signal(
        kind=SignalKind.CONTENT_USAGE,
        status=_status(pref),
        detail=detail,
        source=source or None,
        extra={"preferences": dict(prefs), "stated": pref is not None},
        evidence=evidence,
    )


# --- robots.txt Content-Usage rules -------------------------------------------------------

_Rule = tuple[int, "re.Pattern[str]", Pref | None, dict[str, Pref], str]


def _normalize_path(path: str) -> str:
    # Same spirit as Allow/Disallow matching: compare percent-encoded forms, so "/a b" and
    # "/a%20b" match each other.
    return quote(unquote(path), safe="/?=&;:@!$'()*+,~%-._")


@lru_cache(maxsize=4096)
def _compile_path(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def _parse_rule(value: str) -> _Rule:
    """Split a rule value into (priority, path regex, training pref, prefs, raw)."""
    path, statement = "", value
    if value.startswith("/"):
        path, _, statement = value.replace("\t", " ").partition(" ")
    prefs, _error = parse_preferences(statement.strip())
    pattern = _normalize_path(path) if path else "/"
    priority = len(pattern.encode("utf-8"))
    return priority, _compile_path(pattern), training_preference(prefs), prefs, value


def _rules_for(doc: RobotsDoc, token: str) -> tuple[_Rule, ...]:
    """The parsed Content-Usage rules of the group `token` selects (memoized per group)."""
    memo: dict[str | None, tuple[_Rule, ...]] = doc.memo.setdefault(_MEMO_KEY, {})
    agent = doc.agent_for(token)
    if agent not in memo:
        memo[agent] = tuple(_parse_rule(v) for v in doc.lines_for(token).content_usage)
    return memo[agent]


def _plan_rules(doc: RobotsDoc, plan: TokenPlan) -> tuple[tuple[_Rule, ...], ...]:
    """The rules of each group of `plan`, in plan order (memoized per token list)."""
    if doc.state != "parsed":
        return ()
    key = ("content-usage-plan", plan.tokens)
    if key not in doc.memo:
        doc.memo[key] = tuple(_rules_for(doc, probe) for probe in plan.probes)
    return cast(tuple[tuple[_Rule, ...], ...], doc.memo[key])


def _url_path(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    path = parts.path or "/"
    return _normalize_path(path + ("?" + parts.query if parts.query else ""))


def _matching_rules(rules: Sequence[_Rule], path: str) -> list[_Rule]:
    """The rules with the longest matching path (identical paths all apply)."""
    best: list[_Rule] = []
    for rule in rules:
        if rule[1].match(path) is None:
            continue
        if not best or rule[0] > best[0][0]:
            best = [rule]
        elif rule[0] == best[0][0]:
            best.append(rule)
    return best


def content_usage_from_robots(doc: RobotsDoc, url: str, tokens: Sequence[str]) -> Signal:
    """Content-Usage rules of the robots.txt group of each token, for `url`.

    Longest matching path wins; rules with identical paths are combined (disallow wins);
    preferences apply only where the token may crawl the URL. A document whose selected
    groups carry no rule gets one memoized "no statement" answer (do not mutate it).
    """
    plan = token_plan(doc, tokens)
    problem = f"robots.txt unreachable: {doc.error}" if doc.state == "unreachable" else None
    problem = problem or url_problem(url)
    if problem is not None:
        return Signal(
            SignalKind.CONTENT_USAGE,
            SignalStatus.UNKNOWN,
            problem,
            doc.source or None,
            tokens=dict.fromkeys(plan.tokens, SignalStatus.UNKNOWN),
            evidence=doc.evidence(),
        )
    rules = _plan_rules(doc, plan)
    if not any(rules):
        key = ("content-usage-none", plan.tokens)
        if key not in doc.memo:
            doc.memo[key] = _signal(doc, plan, [(None, NO_STATEMENT)] * len(plan.probes))
        return cast(Signal, doc.memo[key])
    path = _url_path(url)
    per_group: list[tuple[Pref | None, str]] = []
    for probe, group_rules in zip(plan.probes, rules, strict=True):
        matched = _matching_rules(group_rules, path)
        if matched and doc.parser is not None and not doc.parser.can_fetch(url, probe):
            matched = []  # not crawlable: no preference applies
        pref = _combine([rule[2] for rule in matched])
        per_group.append((pref, "; ".join(r[4] for r in matched) if pref else NO_STATEMENT))
    return _signal(doc, plan, per_group)


def _signal(
    doc: RobotsDoc, plan: TokenPlan, per_group: Sequence[tuple[Pref | None, str]]
) -> Signal:
    verdicts = {t: _status(per_group[i][0]) for t, i in zip(plan.tokens, plan.slots, strict=True)}
    details = {t: per_group[i][1] for t, i in zip(plan.tokens, plan.slots, strict=True)}
    return Signal(
        kind=SignalKind.CONTENT_USAGE,
        status=worst_status(tuple(verdicts.values())),
        detail=_summarize(details),
        source=doc.source or None,
        tokens=verdicts,
        extra={"stated": any(pref is not None for pref, _ in per_group)},
        evidence=doc.evidence(),
    )


def _summarize(details: Mapping[str, str]) -> str:
    if not details:
        return "no user-agent tokens evaluated"
    distinct = sorted(set(details.values()))
    if len(distinct) == 1:
        return distinct[0]
    return "; ".join(
        f"{text} ({', '.join(t for t, d in details.items() if d == text)})" for text in distinct
    )


def combine_content_usage(signals: Sequence[Signal]) -> Signal:
    """Combine Content-Usage statements (header, robots.txt): any disallow wins, else any
    unreadable source makes it unknown, else any allow, else nothing stated."""
    statuses = tuple(s.status for s in signals)
    if not statuses:
        return Signal(SignalKind.CONTENT_USAGE, SignalStatus.UNKNOWN, "nothing checked")
    if SignalStatus.RESERVED in statuses or SignalStatus.UNKNOWN in statuses:
        status = worst_status(statuses)
        chosen = [s for s in signals if s.status is status]
    else:
        status = SignalStatus.ALLOWED
        chosen = [s for s in signals if s.extra.get("stated")]
    detail = "; ".join(s.detail for s in chosen) if chosen else NO_STATEMENT
    sources = [s.source for s in chosen if s.source]
    evidence = "\n".join(s.evidence for s in chosen if s.evidence) or None
    return Signal(
        kind=SignalKind.CONTENT_USAGE,
        status=status,
        detail=detail,
        source=sources[0] if sources else None,
        extra={"stated": bool(chosen), "sources": sources},
        evidence=evidence,
    )
