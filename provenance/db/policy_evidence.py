"""The signal side of the compiled policy query: which observation is the latest of its
(scope, subject, kind), and its status rank and staleness under a policy.

Two ways to find the latest observation:
- at present (`as_of` None): `signals_current`, kept in step with `signals` by triggers (see
  migrations 0002, 0003), holds it with the fields its rank depends on: one seek per key;
- as of a past time: a NOT EXISTS probe for a newer observation made at or before `as_of`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.sql.selectable import Subquery

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


def observation_rank(obs: Any, policy: Policy, tokens: TokenDecisions,
                     kind: str | None = None) -> ColumnElement[int]:
    """0 allowed, 1 unknown, 2 reserved: the SQL twin of rules.observation_status. `obs` is an
    alias of signals or of signals_current (whose `invalid_mark` stands for the test on
    `data`); `kind`, when every row has that kind, leaves out the other kinds' terms."""
    tokened = or_(obs.c.tokens_reserved.isnot(None), obs.c.tokens_unknown.isnot(None),
                  obs.c.tokens_allowed.isnot(None))
    base = case(
        (tokened, token_rank(obs, tokens)),
        (obs.c.status == "reserved", 2),
        (obs.c.status == "allowed", 0),
        else_=1,
    )
    held = sorted(policy.held_rsl_sources)
    use_held = bool(held) and kind in (None, "rsl")
    use_invalid = not policy.signals.c2pa_invalid_allowed_counts and kind in (None, "c2pa")
    if not use_held and not use_invalid:
        return base
    held_cond = (and_(true() if kind == "rsl" else obs.c.kind == "rsl", obs.c.source.in_(held))
                 if use_held else false())
    invalid: ColumnElement[bool] = false()
    if use_invalid:
        marked = (obs.c.invalid_mark == true() if "invalid_mark" in obs.c else
                  func.lower(func.coalesce(obs.c.data, "")).contains(_INVALID, autoescape=True))
        invalid = and_(true() if kind == "c2pa" else obs.c.kind == "c2pa", marked)
    return case((held_cond, 0), (and_(invalid, base == 0), 1), else_=base)


def stale_flag(obs: Any, policy: Policy, now: datetime,
               kind: str | None = None) -> ColumnElement[int]:
    """1 when the observation is older than the policy's maximum age for its kind (`kind`: the
    kind every row has)."""
    whens = [(and_(true() if kind == k else obs.c.kind == k, obs.c.observed_at < now - age), 1)
             for k, age in policy.signals.max_age if kind in (None, k)]
    return case(*whens, else_=0) if whens else literal(0, Integer)


def packed_bit(kinds: list[str], kind: str, which: int) -> int:
    """In a packed host value over `kinds`: the bit saying the kind's status is at least
    unknown (`which` 0), reserved (1), or its evidence stale (2). Thermometer bits, so the
    worst of several hosts is the bitwise OR of their values."""
    return 1 << (3 * kinds.index(kind) + which)


NO_SIGHTING = -1
TRUSTED_ONLY = -2


@dataclass(frozen=True)
class HostReasons:
    """The reasons of host-only kinds packed per host, decided in Python from an image's
    `hosts` value: the OR of the packed values (`packed_bit`) of its counted untrusted
    sightings' hosts, or NO_SIGHTING (unknown) / TRUSTED_ONLY (not applicable) when it has
    none; None when nothing is packed. `kinds`: per packed kind, its first packed bit and the
    mask bits of its reserved, unknown and stale reasons (0: the policy has no such reason).
    Few distinct values occur, so the caller decides each once."""

    kinds: tuple[tuple[int, int, int, int], ...] = ()

    def mask(self, value: int | None) -> int:
        """The mask bits `value` raises."""
        if value is None or value == TRUSTED_ONLY:
            return 0
        out = 0
        for first, reserved, unknown, stale in self.kinds:
            if value == NO_SIGHTING:
                out |= unknown
                continue
            if value & first << 1:
                out |= reserved
            elif value & first:
                out |= unknown
            if value & first << 2:
                out |= stale
        return out


def packed_unknown(kinds: list[str]) -> int:
    """The packed value of a host with no evidence of any of `kinds`: unknown, not stale."""
    return sum(packed_bit(kinds, k, 0) for k in kinds)


def _pivot(rows: Any, key: Any, kinds: list[str], name: str,
           packed: list[str] | None = None,
           key_flags: Mapping[str, Callable[[Any], ColumnElement[bool]]] | None = None,
           ) -> Subquery:
    """Per key, the worst status (-1: no evidence) and any staleness of each kind; with
    `packed`, column `t`: those kinds' statuses as one integer (`packed_bit`, no evidence
    counting as unknown); and per `key_flags` entry a 0/1 column of that name: the condition
    on the key itself."""
    cols: list[Any] = [key.label("k")]
    cols += [case((flag(key), 1), else_=0).label(name) for name, flag in (key_flags or {}).items()]
    t: list[Any] = []
    for kind in kinds:
        st = func.max(case((rows.c.kind == kind, rows.c.st), else_=-1))
        stale = func.max(case((rows.c.kind == kind, rows.c.stale), else_=0))
        cols += [st.label(f"st_{kind}"), stale.label(f"stale_{kind}")]
        if packed and kind in packed:
            t += [case((st != 0, packed_bit(packed, kind, 0)), else_=0),
                  case((st == 2, packed_bit(packed, kind, 1)), else_=0),
                  case((stale > 0, packed_bit(packed, kind, 2)), else_=0)]
    if t:
        cols.append(functools.reduce(operator.add, t).label("t"))
    return select(*cols).group_by(key).subquery(name)


def scope_pivot(policy: Policy, now: datetime, as_of: datetime | None, scope: str,
                kinds: list[str], tokens: TokenDecisions,
                subject_filter: Any = None, packed: list[str] | None = None,
                key_flags: Mapping[str, Callable[[Any], ColumnElement[bool]]] | None = None,
                ) -> Subquery:
    """Per subject of one scope: worst status and staleness of each kind's latest evidence
    (and `packed`, `key_flags`: see `_pivot`). `subject_filter(column)`, when given, restricts
    the subjects (a partition's sha256s)."""
    # At present signals_current alone, walked in key order: subjects come grouped.
    o = CURRENT.alias(f"c_{scope}") if as_of is None else SIGNALS.alias(f"o_{scope}")
    cols = (o.c.kind, observation_rank(o, policy, tokens).label("st"),
            stale_flag(o, policy, now).label("stale"))
    stmt = select(o.c.subject, *cols).where(o.c.scope == scope)
    stmt = stmt.where(o.c.kind.in_(kinds) if as_of is None else latest_condition(o, kinds, as_of))
    if subject_filter is not None:
        stmt = stmt.where(subject_filter(o.c.subject))
    rows = stmt.subquery(f"{scope}_rows")
    return _pivot(rows, rows.c.subject, kinds, f"{scope}_p", packed, key_flags)


def latest_of(scope: str, subject: Any, kind: str, as_of: datetime | None,
              name: str) -> tuple[Any, ColumnElement[bool]]:
    """An alias holding the latest observation of (scope, `subject`, kind) and the condition to
    outer-join it on: at present an exact-key seek into signals_current, as of a past time a
    probe of signals' (scope, subject, kind) index with `latest_condition`."""
    if as_of is None:
        c = CURRENT.alias(name)
        return c, and_(c.c.scope == scope, c.c.subject == subject, c.c.kind == kind)
    o = SIGNALS.alias(name)
    return o, and_(o.c.scope == scope, o.c.subject == subject, latest_condition(o, [kind], as_of))


def kinds_present(conn: Connection, scope: str, kinds: list[str]) -> list[str]:
    """The `kinds` of which `signals` holds any observation about `scope`: the others need no
    join (no evidence is the same as no row). One probe per kind on the (kind, status) index."""
    return [k for k in kinds if conn.execute(
        select(literal(1)).where(SIGNALS.c.kind == k, SIGNALS.c.scope == scope).limit(1)
    ).first() is not None]
