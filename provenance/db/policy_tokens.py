"""Dictionary-encoded token decisions for the compiled policy query.

Token lists (`tokens_reserved` / `tokens_unknown` / `tokens_allowed`) take few distinct values
compared with the rows that hold them. Each distinct value is decided once in Python with the
same framed, lower-cased containment test as `rules.token_status`; the query then asks
`IN (...)` of those decisions instead of running one LIKE per policy token per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, case, literal, or_, select
from sqlalchemy.sql.expression import false

from provenance.db.models import SignalObservation

_SIGNALS: Table = SignalObservation.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class TokenDecisions:
    """Per distinct list value: the policy tokens it names (bitmask over the policy's tokens).

    `reserved` / `unknown` / `allowed` map a mask to the distinct values with that mask; values
    absent from the maps (and NULL) name no policy token.
    """

    full: int
    reserved: dict[int, tuple[str, ...]]
    unknown: dict[int, tuple[str, ...]]
    allowed: dict[int, tuple[str, ...]]


def _mask(value: str, tokens: tuple[str, ...]) -> int:
    low = value.lower()
    return sum(1 << i for i, t in enumerate(tokens) if f",{t}," in low)


def _by_mask(values: set[str], tokens: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for v in values:
        mask = _mask(v, tokens)
        if mask:
            groups[mask].append(v)
    return {mask: tuple(sorted(vs)) for mask, vs in sorted(groups.items())}


def load_token_decisions(conn: Connection, tokens: tuple[str, ...]) -> TokenDecisions:
    """Read the distinct token-list values (one sequential scan: a filter on `kind` would walk
    its index and fetch rows at random) and decide each against the policy's `tokens`."""
    cols = (_SIGNALS.c.tokens_reserved, _SIGNALS.c.tokens_unknown, _SIGNALS.c.tokens_allowed)
    rows = conn.execute(select(*cols).distinct()
                        .where(or_(*[c.isnot(None) for c in cols])))
    found: dict[str, set[str]] = {"r": set(), "u": set(), "a": set()}
    for row in rows:
        for tag, value in zip("rua", row, strict=True):
            if value is not None:
                found[tag].add(value)
    return TokenDecisions((1 << len(tokens)) - 1, _by_mask(found["r"], tokens),
                          _by_mask(found["u"], tokens), _by_mask(found["a"], tokens))


def _mask_of(col: Any, groups: dict[int, tuple[str, ...]]) -> ColumnElement[int]:
    if not groups:
        return literal(0)
    return case(*[(col.in_(vs), mask) for mask, vs in groups.items()], else_=0)


def _any_value(col: Any, groups: dict[int, tuple[str, ...]]) -> ColumnElement[bool]:
    values = sorted(v for vs in groups.values() for v in vs)
    return col.in_(values) if values else false()


def token_rank(obs: Any, decisions: TokenDecisions) -> ColumnElement[int]:
    """2 if a policy token is reserved; 1 if one is unknown or in no list; else 0."""
    covered = _mask_of(obs.c.tokens_reserved, decisions.reserved).op("|")(
        _mask_of(obs.c.tokens_allowed, decisions.allowed))
    unknown = or_(_any_value(obs.c.tokens_unknown, decisions.unknown),
                  covered != decisions.full)
    return case((_any_value(obs.c.tokens_reserved, decisions.reserved), 2),
                (unknown, 1), else_=0)

