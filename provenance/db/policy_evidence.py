"""The signal side of the compiled policy query: which observation is the latest of its
(scope, subject, kind), and its status rank and staleness under a policy.

Two ways to find the latest observation:
- at present (`as_of` None): `signals_current`, kept in step with `signals` by triggers (see
  migration 0002), names it; the query walks or seeks that key and fetches the row by id;
- as of a past time: a NOT EXISTS probe for a newer observation made at or before `as_of`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Integer, Table, and_, case, false, func, literal, or_, select
from sqlalchemy.sql.selectable import FromClause, Subquery

from provenance.db.models import SignalCurrent, SignalObservation
from provenance.db.policy_tokens import TokenDecisions, token_rank
from provenance.policy.model import Policy

SIGNALS = cast(Table, SignalObservation.__table__)
CURRENT = cast(Table, SignalCurrent.__table__)
_INVALID = '"validation_state": "invalid"'


def latest_condition(o: Any, kinds: list[str], as_of: datetime | None) -> ColumnElement[bool]:
    """`o` (an alias of signals) is the newest observation of its (scope, subject, kind), by
    observed_at then id, among those made at or before `as_of`. A NOT EXISTS probe on the
    (scope, subject, kind, observed_at) index: no sort, no materialized window."""
    n = SIGNALS.alias(f"newer_{o.name}")
    newer: list[ColumnElement[bool]] = [
        n.c.scope == o.c.scope, n.c.subject == o.c.subject, n.c.kind == o.c.kind,
        or_(n.c.observed_at > o.c.observed_at,
            and_(n.c.observed_at == o.c.observed_at, n.c.id > o.c.id)),
    ]
    conds: list[ColumnElement[bool]] = [o.c.kind.in_(kinds)]
    if as_of is not None:
        newer.append(n.c.observed_at <= as_of)
        conds.append(o.c.observed_at <= as_of)
    return and_(*conds, ~select(n.c.id).where(*newer).exists())


def observation_rank(obs: Any, policy: Policy, tokens: TokenDecisions) -> ColumnElement[int]:
    """0 allowed, 1 unknown, 2 reserved: the SQL twin of rules.observation_status."""
    tokened = or_(obs.c.tokens_reserved.isnot(None), obs.c.tokens_unknown.isnot(None),
                  obs.c.tokens_allowed.isnot(None))
    base = case(
        (tokened, token_rank(obs, tokens)),
        (obs.c.status == "reserved", 2),
        (obs.c.status == "allowed", 0),
        else_=1,
    )
    held = sorted(policy.held_rsl_sources)
    held_cond = and_(obs.c.kind == "rsl", obs.c.source.in_(held)) if held else false()
    invalid = false() if policy.signals.c2pa_invalid_allowed_counts else and_(
        obs.c.kind == "c2pa", func.lower(func.coalesce(obs.c.data, "")).contains(_INVALID,
                                                                                 autoescape=True))
    return case((held_cond, 0), (and_(invalid, base == 0), 1), else_=base)


def stale_flag(obs: Any, policy: Policy, now: datetime) -> ColumnElement[int]:
    """1 when the observation is older than the policy's maximum age for its kind."""
    whens = [(and_(obs.c.kind == kind, obs.c.observed_at < now - age), 1)
             for kind, age in policy.signals.max_age]
    return case(*whens, else_=0) if whens else literal(0, Integer)


def _pivot(rows: Any, key: Any, kinds: list[str], name: str) -> Subquery:
    """Per key, the worst status (-1: no evidence) and any staleness of each kind."""
    cols = [key.label("k")]
    for kind in kinds:
        cols.append(func.max(case((rows.c.kind == kind, rows.c.st), else_=-1)).label(f"st_{kind}"))
        cols.append(func.max(case((rows.c.kind == kind, rows.c.stale), else_=0))
                    .label(f"stale_{kind}"))
    return select(*cols).group_by(key).subquery(name)


def scope_pivot(policy: Policy, now: datetime, as_of: datetime | None, scope: str,
                kinds: list[str], tokens: TokenDecisions,
                subject_filter: Any = None) -> Subquery:
    """Per subject of one scope: worst status and staleness of each kind's latest evidence.
    `subject_filter(column)`, when given, restricts the subjects (a partition's sha256s)."""
    o = SIGNALS.alias(f"o_{scope}")
    cols = (o.c.kind, observation_rank(o, policy, tokens).label("st"),
            stale_flag(o, policy, now).label("stale"))
    if as_of is None:
        # signals_current walked in key order: subjects come grouped, no probe for newer rows.
        c = CURRENT.alias(f"c_{scope}")
        subject = c.c.subject
        stmt = (select(subject, *cols).join_from(c, o, o.c.id == c.c.signal_id)
                .where(c.c.scope == scope, c.c.kind.in_(kinds)))
    else:
        subject = o.c.subject
        stmt = select(subject, *cols).where(o.c.scope == scope, latest_condition(o, kinds, as_of))
    if subject_filter is not None:
        stmt = stmt.where(subject_filter(subject))
    rows = stmt.subquery(f"{scope}_rows")
    return _pivot(rows, rows.c.subject, kinds, f"{scope}_p")


def with_url_evidence(s: Any, kinds: list[str],
                      as_of: datetime | None) -> tuple[FromClause, Any]:
    """`s` (sightings) left-joined to the latest observations about its URL, and the signals
    alias holding them (NULL columns: none). At present: one seek per sighting on
    signals_current's (scope, subject) key prefix, kinds left to the caller's CASEs (an IN list
    on the key would seek once per kind). As of a past time: `latest_condition`."""
    o = SIGNALS.alias("o_url")
    if as_of is None:
        c = CURRENT.alias("c_url")
        frm = s.outerjoin(c, and_(c.c.scope == "url", c.c.subject == s.c.url)).outerjoin(
            o, o.c.id == c.c.signal_id)
        return frm, o
    on = and_(o.c.scope == "url", o.c.subject == s.c.url, latest_condition(o, kinds, as_of))
    return s.outerjoin(o, on), o
