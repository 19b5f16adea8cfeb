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
    CompoundSelect,
    Integer,
    Select,
    String,
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
from sqlalchemy.sql.selectable import CTE, Subquery

from provenance.db.models import (
    Blocklist,
    BlocklistEntry,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)
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


def latest_signals(policy: Policy, as_of: datetime | None) -> Subquery:
    """The newest observation per (scope, subject, kind) of the kinds the policy counts."""
    conds: list[ColumnElement[bool]] = [SIGNALS.c.kind.in_(policy.signals.kinds)]
    if as_of is not None:
        conds.append(SIGNALS.c.observed_at <= as_of)
    rank = func.row_number().over(
        partition_by=(SIGNALS.c.scope, SIGNALS.c.subject, SIGNALS.c.kind),
        order_by=(SIGNALS.c.observed_at.desc(), SIGNALS.c.id.desc()),
    ).label("rn")
    return select(SIGNALS, rank).where(*conds).subquery("ranked")


def _token_rank(obs: Any, tokens: tuple[str, ...]) -> ColumnElement[int]:
    def has(col: Any, token: str) -> ColumnElement[bool]:
        return cast(ColumnElement[bool],
                    func.lower(func.coalesce(col, "")).contains(f",{token},", autoescape=True))

    res = [has(obs.c.tokens_reserved, t) for t in tokens]
    unk = [or_(has(obs.c.tokens_unknown, t),
               ~or_(has(obs.c.tokens_reserved, t), has(obs.c.tokens_allowed, t)))
           for t in tokens]
    return case((or_(*res), 2), (or_(*unk), 1), else_=0)


def observation_rank(obs: Any, policy: Policy) -> ColumnElement[int]:
    """0 allowed, 1 unknown, 2 reserved: the SQL twin of rules.observation_status."""
    tokened = or_(obs.c.tokens_reserved.isnot(None), obs.c.tokens_unknown.isnot(None),
                  obs.c.tokens_allowed.isnot(None))
    base = case(
        (tokened, _token_rank(obs, policy.signals.tokens)),
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


def _kinds_table(kinds: list[str], name: str) -> Subquery:
    parts = [select(literal(k, String).label("kind")) for k in kinds]
    query: Select[Any] | CompoundSelect = parts[0] if len(parts) == 1 else union_all(*parts)
    return query.subquery(name)


def _evaluated(policy: Policy, now: datetime, as_of: datetime | None) -> CTE:
    ranked = latest_signals(policy, as_of)
    return (
        select(ranked.c.scope, ranked.c.subject, ranked.c.kind,
               observation_rank(ranked, policy).label("st"),
               _stale(ranked, policy, now).label("stale"))
        .where(ranked.c.rn == 1)
        .cte("obs")
    )


def _trusted(s: Any, policy: Policy, *, covering: bool = False) -> ColumnElement[bool]:
    names = sorted(t.source_name for t in policy.trusted_sources
                   if t.covers_embedded or not covering)
    return cast(ColumnElement[bool], s.c.source_name.in_(names)) if names else false()


def _signal_rows(policy: Policy, now: datetime, as_of: datetime | None,
                 images: Any) -> Select[Any] | CompoundSelect | None:
    """(image_sha256, kind, st, stale) for every piece of evidence each counted kind needs."""
    obs = _evaluated(policy, now, as_of)
    url_kinds = [k for k in policy.signals.kinds if k in m.URL_KINDS]
    img_kinds = [k for k in policy.signals.kinds if k in m.IMAGE_KINDS]
    parts: list[Select[Any]] = []
    if url_kinds:
        s = SIGHTINGS.alias("us")
        k = _kinds_table(url_kinds, "uk")
        lu, lh = obs.alias("lu"), obs.alias("lh")
        st = case(
            (and_(lu.c.st.is_(None), lh.c.st.is_(None)), 1),
            (lu.c.st.is_(None), lh.c.st),
            (lh.c.st.is_(None), lu.c.st),
            (lu.c.st >= lh.c.st, lu.c.st),
            else_=lh.c.st,
        )
        stale = func.coalesce(lu.c.stale, 0) + func.coalesce(lh.c.stale, 0)
        parts.append(
            select(s.c.image_sha256.label("sha"), k.c.kind, st.label("st"), stale.label("stale"))
            .select_from(s.join(k, true())
                         .outerjoin(lu, and_(lu.c.scope == "url", lu.c.subject == s.c.url,
                                             lu.c.kind == k.c.kind))
                         .outerjoin(lh, and_(lh.c.scope == "host", lh.c.subject == s.c.host,
                                             lh.c.kind == k.c.kind)))
            .where(counted(s), s.c.image_sha256.isnot(None),
                   or_(s.c.source_name.is_(None), ~_trusted(s, policy)))
        )
    if img_kinds:
        k = _kinds_table(img_kinds, "ik")
        li = obs.alias("li")
        cover = SIGHTINGS.alias("cov")
        covered = (select(cover.c.id).where(cover.c.image_sha256 == images.c.sha256,
                                            counted(cover), _trusted(cover, policy, covering=True))
                   .exists())
        parts.append(
            select(images.c.sha256.label("sha"), k.c.kind,
                   func.coalesce(li.c.st, 1).label("st"),
                   func.coalesce(li.c.stale, 0).label("stale"))
            .select_from(images.join(k, true())
                         .outerjoin(li, and_(li.c.scope == "image",
                                             li.c.subject == images.c.sha256,
                                             li.c.kind == k.c.kind)))
            .where(~covered)
        )
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _signal_agg(policy: Policy, now: datetime, as_of: datetime | None,
                images: Any) -> Subquery | None:
    rows_query = _signal_rows(policy, now, as_of, images)
    if rows_query is None:
        return None
    rows = rows_query.subquery("sigrows")
    cols = [rows.c.sha]
    for kind in policy.signals.kinds:
        cols.append(func.max(case((rows.c.kind == kind, rows.c.st), else_=-1)).label(f"st_{kind}"))
        cols.append(func.max(case((rows.c.kind == kind, rows.c.stale), else_=0))
                    .label(f"stale_{kind}"))
    return select(*cols).group_by(rows.c.sha).subquery("sigagg")


def _sighting_agg(policy: Policy) -> Subquery:
    s = SIGHTINGS.alias("s")
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
            flag(and_(counted(s), licensed)).label("licensed"),
            flag(and_(counted(s), s.c.license_spdx.isnot(None))).label("has_license"),
            flag(and_(counted(s), s.c.caption.isnot(None), func.trim(s.c.caption) != ""))
            .label("has_caption"),
            flag(deny).label("denied"),
            flag(and_(counted(s), allow_dom)).label("allowed_domain"),
        )
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


def blocklist_condition(s: Any, e: Any) -> ColumnElement[bool]:
    """A blocklist entry covers a sighting: domain (with subdomains) or URL prefix."""
    return or_(
        and_(e.c.kind == "domain", host_matches(s.c.host, e.c.value)),
        and_(e.c.kind == "url-prefix",
             func.substr(s.c.url, 1, func.length(e.c.value)) == e.c.value),
    )


def _blocked_shas(as_of: datetime | None) -> Subquery:
    s = SIGHTINGS.alias("bs")
    e, b = ENTRIES.alias("be"), LISTS.alias("bl")
    return (
        select(s.c.image_sha256.label("sha")).distinct()
        .select_from(s.join(e, blocklist_condition(s, e))
                     .join(b, and_(b.c.id == e.c.list_id,
                                   b.c.imported_at <= as_of if as_of is not None else true())))
        .where(s.c.image_sha256.isnot(None))
        .subquery("blk")
    )


def compile_policy(policy: Policy, now: datetime, *, as_of: datetime | None = None,
                   partition: tuple[int, int] | None = None) -> CompiledPolicy:
    """One query: per image of the partition, `sha256` then a 0/1 column per reason code.

    Near-duplicates are added by the caller (see module docstring).
    """
    img = IMAGES.alias("img")
    sagg = _sighting_agg(policy)
    opt = _optout_shas(as_of)
    blk = _blocked_shas(as_of)
    sig = _signal_agg(policy, now, as_of, IMAGES.alias("simg"))
    frm = (img.outerjoin(sagg, sagg.c.sha == img.c.sha256)
           .outerjoin(opt, opt.c.sha == img.c.sha256)
           .outerjoin(blk, blk.c.sha == img.c.sha256))
    if sig is not None:
        frm = frm.outerjoin(sig, sig.c.sha == img.c.sha256)

    def one(name: str) -> Any:
        return func.coalesce(sagg.c[name], 0)

    flags: list[tuple[str, ColumnElement[bool]]] = [
        (m.OPTED_OUT, opt.c.sha.isnot(None)),
        (m.BLOCKLISTED, blk.c.sha.isnot(None)),
        (m.DOMAIN_DENIED, one("denied") == 1),
    ]
    if policy.domains_allow:
        flags.append((m.DOMAIN_NOT_ALLOWED, one("allowed_domain") == 0))
    flags += [
        (m.LICENSE_UNKNOWN, and_(one("licensed") == 0, one("has_license") == 0)),
        (m.LICENSE_NOT_ALLOWED, and_(one("licensed") == 0, one("has_license") == 1)),
    ]
    if sig is not None:
        flags += _signal_flags(policy, sig, one("has_trusted"))
    flags += _quality_flags(policy, img, one("has_caption"))
    columns = [case((cond, 1), else_=0).label(f"f{i}") for i, (_, cond) in enumerate(flags)]
    query = (select(img.c.sha256, *columns).select_from(frm)
             .where(partition_filter(img.c.sha256, partition)))
    return CompiledPolicy(query, tuple(code for code, _ in flags))


def _signal_flags(policy: Policy, sig: Subquery,
                  has_trusted: Any) -> list[tuple[str, ColumnElement[bool]]]:
    flags: list[tuple[str, ColumnElement[bool]]] = []
    for kind in policy.signals.kinds:
        raw = func.coalesce(sig.c[f"st_{kind}"], -1)
        if kind in m.URL_KINDS:
            # No untrusted counted sighting: not applicable if a trusted one exists, else unknown.
            missing: Any = case((has_trusted == 1, 0), else_=1)
        else:
            missing = literal(0, Integer)  # no row: a contract covers the embedded signals
        status = case((raw == -1, missing), else_=raw)
        flags.append((m.signal_reserved(kind), status == 2))
        if kind not in policy.signals.unknown_allowed:
            flags.append((m.signal_unknown(kind), status == 1))
        if policy.signals.max_age_of(kind) is not None:
            flags.append((m.evidence_stale(kind), func.coalesce(sig.c[f"stale_{kind}"], 0) > 0))
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
