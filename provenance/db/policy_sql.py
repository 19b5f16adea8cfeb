"""A policy compiled to one set-based SQL query (SQLAlchemy Core, SQLite and PostgreSQL), and the
batched loading of per-image facts for the pure Python path (`provenance.policy.decide`).

Both paths implement the rules documented in policies/README.md; a property test on random
catalogs checks that they agree exactly. The compiled query returns one row per image with a
bitmask of the reason codes that apply. Near-duplicates are not in SQL: both paths use
`provenance.policy.near_duplicates` over the catalog's perceptual hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
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
)
from provenance.db.policy_evidence import (
    observation_rank,
    scope_pivot,
    stale_flag,
    with_url_evidence,
)
from provenance.db.policy_tokens import BlocklistValues, TokenDecisions, blocked
from provenance.policy import model as m
from provenance.policy.model import Policy

IMAGES = cast(Table, Image.__table__)
SIGHTINGS = cast(Table, Sighting.__table__)
REQUESTS = cast(Table, OptOutRequest.__table__)
MATCHES = cast(Table, OptOutMatch.__table__)
LISTS = cast(Table, Blocklist.__table__)
ENTRIES = cast(Table, BlocklistEntry.__table__)


@dataclass(frozen=True)
class CompiledPolicy:
    """The query (sha256, mask) and the reason code of each mask bit (bit i: `codes[i]`)."""

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


def _trusted(s: Any, policy: Policy, *, covering: bool = False) -> ColumnElement[bool]:
    names = sorted(t.source_name for t in policy.trusted_sources
                   if t.covers_embedded or not covering)
    return cast(ColumnElement[bool], s.c.source_name.in_(names)) if names else false()


def _untrusted_counted(s: Any, policy: Policy) -> ColumnElement[bool]:
    return and_(counted(s), s.c.image_sha256.isnot(None),
                or_(s.c.source_name.is_(None), ~_trusted(s, policy)))


def _sighting_rows(policy: Policy, now: datetime, as_of: datetime | None, url_kinds: list[str],
                   tokens: TokenDecisions, blocklist: BlocklistValues,
                   partition: tuple[int, int] | None, dialect: str) -> Subquery:
    """One row per sighting (with an image) of narrow columns, so the grouping by image that
    follows sorts small records: license, caption, domain and blocklist 0/1 flags, whether it
    is a counted untrusted sighting, its host, and per URL-level kind the worst status (-1:
    none) and staleness of its URL's latest evidence.

    Grouped by sighting id (a walk in rowid order, no sort) to fold its URL evidence rows."""
    s = SIGHTINGS.alias("s")
    allowed = sorted(policy.licenses.allowed_spdx)
    licensed = or_(_trusted(s, policy), s.c.license_spdx.in_(allowed) if allowed else false())
    deny = or_(false(), *[host_matches(s.c.host, d) for d in policy.domains_deny])
    allow_dom = or_(_trusted(s, policy), *[host_matches(s.c.host, d) for d in policy.domains_allow])
    flags = {
        "has_trusted": and_(counted(s), _trusted(s, policy)),
        "has_covering": and_(counted(s), _trusted(s, policy, covering=True)),
        "licensed": and_(counted(s), licensed),
        "has_license": and_(counted(s), s.c.license_spdx.isnot(None)),
        "has_caption": and_(counted(s), s.c.caption.isnot(None), func.trim(s.c.caption) != ""),
        "denied": deny,
        "allowed_domain": and_(counted(s), allow_dom),
        "blocked": blocked(s, blocklist),
        "uc": _untrusted_counted(s, policy),
    }
    cols: list[Any] = [s.c.image_sha256.label("sha"), s.c.host,
                       *[case((cond, 1), else_=0).label(name) for name, cond in flags.items()]]
    frm: Any = s
    if url_kinds:
        frm, o = with_url_evidence(s, url_kinds, as_of)
        rank, stale = observation_rank(o, policy, tokens), stale_flag(o, policy, now)
        for kind in url_kinds:
            cols += [func.max(case((o.c.kind == kind, rank), else_=-1)).label(f"u_st_{kind}"),
                     func.max(case((o.c.kind == kind, stale), else_=0)).label(f"u_stale_{kind}")]
    # On PostgreSQL the sighting's own columns are grouped by too: a partitioned catalog has no
    # primary key on sightings.id to make them functionally dependent on it. Not on SQLite,
    # where the extra terms steer the planner from the rowid walk to the image index.
    own = [s.c[c] for c in ("image_sha256", "host", "url", "status", "source_name",
                            "license_spdx", "caption")] if dialect == "postgresql" else []
    return (select(*cols).select_from(frm)
            .where(s.c.image_sha256.isnot(None), partition_filter(s.c.image_sha256, partition))
            .group_by(s.c.id, *own).subquery("sx"))


_FLAGS = ("has_trusted", "has_covering", "licensed", "has_license", "has_caption", "denied",
          "allowed_domain", "blocked")


def _sighting_agg(policy: Policy, now: datetime, as_of: datetime | None, url_kinds: list[str],
                  tokens: TokenDecisions, blocklist: BlocklistValues,
                  partition: tuple[int, int] | None, dialect: str) -> Subquery:
    """Per image: any of its sightings sets each flag; per URL-level kind, the worst status
    (NULL: no counted untrusted sighting) and any staleness over counted untrusted sightings,
    each sighting's URL and host evidence combined (worst wins; neither present is unknown)."""
    sx = _sighting_rows(policy, now, as_of, url_kinds, tokens, blocklist, partition, dialect)
    cols: list[Any] = [sx.c.sha, *[func.max(sx.c[name]).label(name) for name in _FLAGS]]
    frm: Any = sx
    if url_kinds:
        hp = scope_pivot(policy, now, as_of, "host", url_kinds, tokens)
        frm = sx.outerjoin(hp, hp.c.k == sx.c.host)
        uc = sx.c.uc == 1
        for kind in url_kinds:
            u = sx.c[f"u_st_{kind}"]
            h = func.coalesce(hp.c[f"st_{kind}"], -1)
            st = case((and_(u == -1, h == -1), 1), (u >= h, u), else_=h)
            stale = sx.c[f"u_stale_{kind}"] + func.coalesce(hp.c[f"stale_{kind}"], 0)
            cols += [func.max(case((uc, st), else_=None)).label(f"st_{kind}"),
                     func.max(case((uc, stale), else_=0)).label(f"stale_{kind}")]
    return select(*cols).select_from(frm).group_by(sx.c.sha).subquery("sagg")


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
                   partition: tuple[int, int] | None = None,
                   dialect: str = "sqlite") -> CompiledPolicy:
    """One query: per image of the partition, `sha256` and `mask`, with bit i set when reason
    `codes[i]` applies (0: included, unless a near-duplicate).

    `tokens` (`load_token_decisions`) and `blocklist` (`blocklist_in_force`, same `as_of`) are
    read from the catalog just before, in the same transaction; the query is only valid with
    them. `dialect` is the name of the backend it will run on.

    Near-duplicates are added by the caller (see module docstring).
    """
    img = IMAGES.alias("img")
    url_kinds = [k for k in policy.signals.kinds if k in m.URL_KINDS]
    img_kinds = [k for k in policy.signals.kinds if k in m.IMAGE_KINDS]
    sagg = _sighting_agg(policy, now, as_of, url_kinds, tokens, blocklist, partition, dialect)
    opt = _optout_shas(as_of)
    frm = (img.outerjoin(sagg, sagg.c.sha == img.c.sha256)
           .outerjoin(opt, opt.c.sha == img.c.sha256))
    isig = None
    if img_kinds:
        isig = scope_pivot(policy, now, as_of, "image", img_kinds, tokens,
                           lambda col: partition_filter(col, partition))
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
    # One integer per image, bit i for reason i: the caller reads two columns per row, and
    # counts by distinct mask rather than by reason.
    bits = [case((cond, literal(1 << i, BigInteger)), else_=literal(0, BigInteger))
            for i, (_, cond) in enumerate(flags)]
    mask: ColumnElement[Any] = bits[0]
    for bit in bits[1:]:
        mask = mask + bit
    query = (select(img.c.sha256, mask.label("mask")).select_from(frm)
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
