"""A policy compiled to one set-based SQL query (SQLAlchemy Core, SQLite and PostgreSQL), and the
batched loading of per-image facts for the pure Python path (`provenance.policy.decide`).

Both paths implement the rules documented in policies/README.md; a property test on random
catalogs checks that they agree exactly. The compiled query returns one row per image with one
0/1 column per reason code. Near-duplicates are not in SQL: both paths use
`provenance.policy.near_duplicates` over the catalog's perceptual hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql.selectable import Subquery

from provenance.db.models import (
    Blocklist,
    BlocklistEntry,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)
from provenance.db.policy_tokens import BlocklistValues, TokenDecisions, blocked, token_rank
from provenance.policy import model as m
from provenance.policy.model import Policy

IMAGES = cast(Table, Image.__table__)
SIGHTINGS = cast(Table, Sighting.__table__)
SIGNALS = cast(Table, SignalObservation.__table__)
REQUESTS = cast(Table, OptOutRequest.__table__)
MATCHES = cast(Table, OptOutMatch.__table__)
LISTS = cast(Table, Blocklist.__table__)
ENTRIES = cast(Table, BlocklistEntry.__table__)
_INVALID = '"validation_state": "invalid"'


@dataclass(frozen=True)
class CompiledPolicy:
    """The query and the reason code of each of its flag columns (in column order)."""

    query: Select[Any]
    codes: tuple[str, ...]


def partition_bounds(partition: tuple[int, int] | None) -> tuple[str | None, str | None]:
    """sha256 string bounds of slice I of N: first 16 bits in [I*65536/N, (I+1)*65536/N)."""
    if partition is None:
        return None, None
    index, count = partition
    lo = -(-index * 65536 // count)
    hi = -(-(index + 1) * 65536 // count)
    return (f"{lo:04x}" if lo > 0 else None), (f"{hi:04x}" if hi < 65536 else None)


def partition_filter(column: Any, partition: tuple[int, int] | None) -> ColumnElement[bool]:
    """Restrict a sha256 column to one partition (index-friendly string range)."""
    lo, hi = partition_bounds(partition)
    conds: list[ColumnElement[bool]] = []
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column < hi)
    return and_(true(), *conds)


def host_matches(host: Any, domain: Any) -> ColumnElement[bool]:
    """host == domain or host ends with '.' + domain; case-sensitive on every backend."""
    n = func.length(domain)
    return or_(
        host == domain,
        and_(func.length(host) > n,
             func.substr(host, func.length(host) - n) == literal(".") + domain),
    )


def counted(s: Any) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], s.c.status.in_(m.COUNTED_STATUSES))


def active_optouts(as_of: datetime | None) -> Select[Any]:
    """(request_id, image_sha256, sighting_id, how) of opt-out matches in force."""
    conds: list[ColumnElement[bool]] = []
    if as_of is None:
        conds.append(REQUESTS.c.status == "active")
    else:
        conds += [
            REQUESTS.c.recorded_at <= as_of,
            or_(REQUESTS.c.status == "active", REQUESTS.c.withdrawn_at > as_of),
            MATCHES.c.matched_at <= as_of,
        ]
    return (
        select(MATCHES.c.request_id, MATCHES.c.image_sha256, MATCHES.c.sighting_id, MATCHES.c.how,
               REQUESTS.c.reference, REQUESTS.c.requester)
        .join_from(MATCHES, REQUESTS, MATCHES.c.request_id == REQUESTS.c.id)
        .where(*conds)
    )


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


def _stale(obs: Any, policy: Policy, now: datetime) -> ColumnElement[int]:
    whens = [(and_(obs.c.kind == kind, obs.c.observed_at < now - age), 1)
             for kind, age in policy.signals.max_age]
    return case(*whens, else_=0) if whens else literal(0, Integer)


def _trusted(s: Any, policy: Policy, *, covering: bool = False) -> ColumnElement[bool]:
    names = sorted(t.source_name for t in policy.trusted_sources
                   if t.covers_embedded or not covering)
    return cast(ColumnElement[bool], s.c.source_name.in_(names)) if names else false()


def _pivot(rows: Any, key: Any, kinds: list[str], name: str) -> Subquery:
    """Per key, the worst status (-1: no evidence) and any staleness of each kind."""
    cols = [key.label("k")]
    for kind in kinds:
        cols.append(func.max(case((rows.c.kind == kind, rows.c.st), else_=-1)).label(f"st_{kind}"))
        cols.append(func.max(case((rows.c.kind == kind, rows.c.stale), else_=0))
                    .label(f"stale_{kind}"))
    return select(*cols).group_by(key).subquery(name)


def _untrusted_counted(s: Any, policy: Policy) -> ColumnElement[bool]:
    return and_(counted(s), s.c.image_sha256.isnot(None),
                or_(s.c.source_name.is_(None), ~_trusted(s, policy)))


def _scope_pivot(policy: Policy, now: datetime, as_of: datetime | None, scope: str,
                 kinds: list[str], tokens: TokenDecisions) -> Subquery:
    """Per subject of one scope: worst status and staleness of each kind's latest evidence."""
    o = SIGNALS.alias(f"o_{scope}")
    rows = (select(o.c.subject, o.c.kind, observation_rank(o, policy, tokens).label("st"),
                   _stale(o, policy, now).label("stale"))
            .where(o.c.scope == scope, latest_condition(o, kinds, as_of))
            .subquery(f"{scope}_rows"))
    return _pivot(rows, rows.c.subject, kinds, f"{scope}_p")


def _sightings_with_url_evidence(policy: Policy, now: datetime, as_of: datetime | None,
                                 kinds: list[str], tokens: TokenDecisions) -> Subquery:
    """Sightings (with an image), each with the worst status (-1: none) and staleness of each
    kind's latest evidence about its URL: one probe of the (scope, subject, kind) index per
    sighting, rather than pivoting every URL's evidence and indexing the pivot by URL text."""
    s, o = SIGHTINGS.alias("s"), SIGNALS.alias("o_url")
    rank, stale = observation_rank(o, policy, tokens), _stale(o, policy, now)
    cols: list[Any] = [s.c[c] for c in _SIGHTING_COLS]
    for kind in kinds:
        cols.append(func.max(case((o.c.kind == kind, rank), else_=-1)).label(f"u_st_{kind}"))
        cols.append(func.max(case((o.c.kind == kind, stale), else_=0)).label(f"u_stale_{kind}"))
    on = and_(o.c.scope == "url", o.c.subject == s.c.url, latest_condition(o, kinds, as_of))
    return (select(*cols).select_from(s.outerjoin(o, on)).where(s.c.image_sha256.isnot(None))
            .group_by(s.c.id).subquery("sx"))


_SIGHTING_COLS = ("id", "image_sha256", "status", "url", "host", "source_name", "license_spdx",
                  "caption")


def _url_signal_cols(s: Any, policy: Policy, now: datetime, as_of: datetime | None,
                     kinds: list[str], tokens: TokenDecisions) -> tuple[Any, list[Any]]:
    """`s` (from `_sightings_with_url_evidence`) joined to per-host evidence, and per URL-level
    kind the worst status (NULL: no counted untrusted sighting) and staleness over counted
    untrusted sightings. Per sighting, its URL's and its host's evidence combine (worst wins);
    neither present is unknown."""
    if not kinds:
        return s, []
    hp = _scope_pivot(policy, now, as_of, "host", kinds, tokens)
    uc = _untrusted_counted(s, policy)
    cols: list[Any] = []
    for kind in kinds:
        u = s.c[f"u_st_{kind}"]
        h = func.coalesce(hp.c[f"st_{kind}"], -1)
        st = case((and_(u == -1, h == -1), 1), (u >= h, u), else_=h)
        stale = s.c[f"u_stale_{kind}"] + func.coalesce(hp.c[f"stale_{kind}"], 0)
        cols.append(func.max(case((uc, st), else_=None)).label(f"st_{kind}"))
        cols.append(func.max(case((uc, stale), else_=0)).label(f"stale_{kind}"))
    return s.outerjoin(hp, hp.c.k == s.c.host), cols


def _image_signal_agg(policy: Policy, now: datetime, as_of: datetime | None,
                      kinds: list[str], tokens: TokenDecisions) -> Subquery:
    return _scope_pivot(policy, now, as_of, "image", kinds, tokens)


def _sighting_agg(policy: Policy, now: datetime, as_of: datetime | None, url_kinds: list[str],
                  tokens: TokenDecisions, blocklist: BlocklistValues) -> Subquery:
    """Per image, one pass over its sightings: license, caption, domain and blocklist flags, and
    the URL-level signal columns of `_url_signal_cols`."""
    s: Any = (_sightings_with_url_evidence(policy, now, as_of, url_kinds, tokens) if url_kinds
              else SIGHTINGS.alias("s"))
    frm, signal_cols = _url_signal_cols(s, policy, now, as_of, url_kinds, tokens)
    allowed = sorted(policy.licenses.allowed_spdx)
    licensed = or_(_trusted(s, policy), s.c.license_spdx.in_(allowed) if allowed else false())
    deny = or_(false(), *[host_matches(s.c.host, d) for d in policy.domains_deny])
    allow_dom = or_(_trusted(s, policy), *[host_matches(s.c.host, d) for d in policy.domains_allow])

    def flag(cond: ColumnElement[bool]) -> Any:
        return func.max(case((cond, 1), else_=0))

    return (
        select(
            s.c.image_sha256.label("sha"),
            flag(and_(counted(s), _trusted(s, policy))).label("has_trusted"),
            flag(and_(counted(s), _trusted(s, policy, covering=True))).label("has_covering"),
            flag(and_(counted(s), licensed)).label("licensed"),
            flag(and_(counted(s), s.c.license_spdx.isnot(None))).label("has_license"),
            flag(and_(counted(s), s.c.caption.isnot(None), func.trim(s.c.caption) != ""))
            .label("has_caption"),
            flag(deny).label("denied"),
            flag(and_(counted(s), allow_dom)).label("allowed_domain"),
            flag(blocked(s, blocklist)).label("blocked"),
            *signal_cols,
        )
        .select_from(frm)
        .where(s.c.image_sha256.isnot(None))
        .group_by(s.c.image_sha256)
        .subquery("sagg")
    )


def _optout_shas(as_of: datetime | None) -> Subquery:
    active = active_optouts(as_of).subquery("act")
    s = SIGHTINGS.alias("os")
    direct = select(active.c.image_sha256.label("sha")).where(active.c.image_sha256.isnot(None))
    via = select(s.c.image_sha256.label("sha")).join_from(active, s, active.c.sighting_id == s.c.id)
    both = union_all(direct, via).subquery("optu")
    return select(both.c.sha).where(both.c.sha.isnot(None)).distinct().subquery("opt")


def compile_policy(policy: Policy, now: datetime, tokens: TokenDecisions,
                   blocklist: BlocklistValues, *,
                   as_of: datetime | None = None,
                   partition: tuple[int, int] | None = None) -> CompiledPolicy:
    """One query: per image of the partition, `sha256` then a 0/1 column per reason code.

    `tokens` (`load_token_decisions`) and `blocklist` (`blocklist_in_force`, same `as_of`) are
    read from the catalog just before, in the same transaction; the query is only valid with
    them.

    Near-duplicates are added by the caller (see module docstring).
    """
    img = IMAGES.alias("img")
    url_kinds = [k for k in policy.signals.kinds if k in m.URL_KINDS]
    img_kinds = [k for k in policy.signals.kinds if k in m.IMAGE_KINDS]
    sagg = _sighting_agg(policy, now, as_of, url_kinds, tokens, blocklist)
    opt = _optout_shas(as_of)
    frm = (img.outerjoin(sagg, sagg.c.sha == img.c.sha256)
           .outerjoin(opt, opt.c.sha == img.c.sha256))
    isig = None
    if img_kinds:
        isig = _image_signal_agg(policy, now, as_of, img_kinds, tokens)
        frm = frm.outerjoin(isig, isig.c.k == img.c.sha256)

    def one(name: str) -> Any:
        return func.coalesce(sagg.c[name], 0)

    flags: list[tuple[str, ColumnElement[bool]]] = [
        (m.OPTED_OUT, opt.c.sha.isnot(None)),
        (m.BLOCKLISTED, one("blocked") == 1),
        (m.DOMAIN_DENIED, one("denied") == 1),
    ]
    if policy.domains_allow:
        flags.append((m.DOMAIN_NOT_ALLOWED, one("allowed_domain") == 0))
    flags += [
        (m.LICENSE_UNKNOWN, and_(one("licensed") == 0, one("has_license") == 0)),
        (m.LICENSE_NOT_ALLOWED, and_(one("licensed") == 0, one("has_license") == 1)),
    ]
    for kind in policy.signals.kinds:
        if kind in m.URL_KINDS:
            raw: Any = sagg.c[f"st_{kind}"]
            # No untrusted counted sighting: not applicable if a trusted one exists, else unknown.
            status: Any = case((raw.is_(None), case((one("has_trusted") == 1, 0), else_=1)),
                               else_=raw)
            stale: Any = one(f"stale_{kind}")
        else:
            assert isig is not None
            raw = func.coalesce(isig.c[f"st_{kind}"], -1)
            covered = one("has_covering") == 1  # the contract covers embedded signals
            status = case((covered, 0), (raw == -1, 1), else_=raw)
            stale = case((covered, 0), else_=func.coalesce(isig.c[f"stale_{kind}"], 0))
        flags += _signal_flags(policy, kind, status, stale)
    flags += _quality_flags(policy, img, one("has_caption"))
    columns = [case((cond, 1), else_=0).label(f"f{i}") for i, (_, cond) in enumerate(flags)]
    query = (select(img.c.sha256, *columns).select_from(frm)
             .where(partition_filter(img.c.sha256, partition)))
    return CompiledPolicy(query, tuple(code for code, _ in flags))


def _signal_flags(policy: Policy, kind: str, status: Any,
                  stale: Any) -> list[tuple[str, ColumnElement[bool]]]:
    flags: list[tuple[str, ColumnElement[bool]]] = [(m.signal_reserved(kind), status == 2)]
    if kind not in policy.signals.unknown_allowed:
        flags.append((m.signal_unknown(kind), status == 1))
    if policy.signals.max_age_of(kind) is not None:
        flags.append((m.evidence_stale(kind), stale > 0))
    return flags


def _quality_flags(policy: Policy, img: Any,
                   has_caption: Any) -> list[tuple[str, ColumnElement[bool]]]:
    q = policy.quality
    w, h = img.c.width, img.c.height
    flags: list[tuple[str, ColumnElement[bool]]] = []
    small: list[ColumnElement[bool]] = []
    if q.min_width is not None:
        small.append(or_(w.is_(None), w < q.min_width))
    if q.min_height is not None:
        small.append(or_(h.is_(None), h < q.min_height))
    if small:
        flags.append((m.TOO_SMALL, or_(*small)))
    if q.max_aspect_ratio is not None:
        r = literal(q.max_aspect_ratio)
        flags.append((m.ASPECT_RATIO, or_(w.is_(None), h.is_(None), w <= 0, h <= 0,
                                          w > r * h, h > r * w)))
    if q.formats:
        flags.append((m.FORMAT, or_(img.c.format.is_(None),
                                    func.lower(img.c.format).not_in(sorted(q.formats)))))
    if q.require_decode_ok:
        flags.append((m.DECODE_FAILED, img.c.decode_ok == false()))
    if q.require_caption:
        flags.append((m.NO_CAPTION, has_caption == 0))
    return flags
