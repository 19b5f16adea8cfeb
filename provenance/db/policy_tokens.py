"""Catalog values the compiled policy query is specialised on, read once just before it runs:
token-list decisions and blocklist entries in force; and SQLite tuning for the whole-catalog scan.

Token decisions:
Token lists (`tokens_reserved` / `tokens_unknown` / `tokens_allowed`) take few distinct values
compared with the rows that hold them. Each distinct value is decided once in Python with the
same framed, lower-cased containment test as `rules.token_status`; the query then asks
`IN (...)` of those decisions instead of running one LIKE per policy token per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, case, func, literal, or_, select
from sqlalchemy.sql.expression import false

from provenance.db.models import Blocklist, BlocklistEntry, SignalObservation

_SIGNALS: Table = SignalObservation.__table__  # type: ignore[assignment]
_ENTRIES: Table = BlocklistEntry.__table__  # type: ignore[assignment]
_LISTS: Table = Blocklist.__table__  # type: ignore[assignment]


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


_MMAP_BYTES = 8 << 30


@contextmanager
def scan_tuning(conn: Connection) -> Iterator[None]:
    """On SQLite, for one whole-catalog evaluation: read the file through mmap. Once the catalog
    outgrows the page cache, the query's random probes (sightings by image, signals by subject)
    otherwise become read() system calls (about a fifth of the time at 1M images). Restored
    afterwards, since the connection returns to the pool."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA mmap_size={_MMAP_BYTES}")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA mmap_size=0")


@dataclass(frozen=True)
class BlocklistValues:
    """The blocklist entry values in force: domains (with subdomains) and URL prefixes."""

    domains: tuple[str, ...]
    prefixes: tuple[str, ...]


def blocklist_in_force(conn: Connection, as_of: datetime | None) -> BlocklistValues:
    """Read the distinct entry values in force once (lists hold thousands at most), so the query
    compares fixed-length suffixes and prefixes with `IN (...)` instead of joining every entry
    against every sighting."""
    stmt = (select(_ENTRIES.c.kind, _ENTRIES.c.value)
            .join_from(_ENTRIES, _LISTS, _LISTS.c.id == _ENTRIES.c.list_id)
            .where(*([] if as_of is None else [_LISTS.c.imported_at <= as_of]))
            .distinct().order_by(_ENTRIES.c.kind, _ENTRIES.c.value))
    rows = conn.execute(stmt).all()
    return BlocklistValues(tuple(r.value for r in rows if r.kind == "domain"),
                           tuple(r.value for r in rows if r.kind == "url-prefix"))


def _by_length(values: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    groups: dict[int, list[str]] = {}
    for v in values:
        groups.setdefault(len(v), []).append(v)
    return sorted(groups.items())


def blocked_host(host: Any, blocklist: BlocklistValues) -> ColumnElement[bool]:
    """`host` is a listed domain or ends with '.' + one (compared per suffix length)."""
    n = func.length(host)
    conds: list[ColumnElement[bool]] = []
    if blocklist.domains:
        conds.append(host.in_(blocklist.domains))
    for size, domains in _by_length(blocklist.domains):
        conds.append(and_(n > size, func.substr(host, n - size).in_([f".{d}" for d in domains])))
    return or_(false(), *conds)


def blocked_url(url: Any, blocklist: BlocklistValues) -> ColumnElement[bool]:
    """`url` starts with a listed prefix."""
    return or_(false(), *[func.substr(url, 1, size).in_(prefixes)
                          for size, prefixes in _by_length(blocklist.prefixes)])


def blocked(s: Any, blocklist: BlocklistValues) -> ColumnElement[bool]:
    """Sighting `s` is covered by an entry in force: its host is a listed domain or ends with
    '.' + one, or its URL starts with a listed prefix."""
    return or_(blocked_host(s.c.host, blocklist), blocked_url(s.c.url, blocklist))
