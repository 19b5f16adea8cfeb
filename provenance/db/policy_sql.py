"""A policy compiled to one set-based SQL query (SQLAlchemy Core, SQLite and PostgreSQL), and the
batched loading of per-image facts for the pure Python path (`provenance.policy.decide`).

Both paths implement the rules documented in policies/README.md; a property test on random
catalogs checks that they agree exactly. The compiled query returns one row per image with a
bitmask of the reason codes that apply, except three the caller adds in Python: the packed
host-only kinds' reasons (decoded once per distinct packed value, `HostReasons`); opt-outs
(`opted_out_keys`, read once); and near-duplicates, for which both paths use
`provenance.policy.near_duplicates` over the catalog's perceptual hashes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
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
    CURRENT,
    NO_SIGHTING,
    TRUSTED_ONLY,
    HostReasons,
    latest_of,
    observation_rank,
    packed_bit,
    packed_unknown,
    scope_pivot,
    stale_flag,
)
from provenance.db.policy_tokens import (
    BlocklistValues,
    TokenDecisions,
    blocked_host,
    blocked_url,
)
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
    """The query (sha256, mask, ambiguous, hosts) and the reason code of each mask bit (bit i:
    `codes[i]`); `hosts` gives the bits of the packed host-only kinds, which the query leaves
    out of `mask`."""

    query: Select[Any]
    codes: tuple[str, ...]
    hosts: HostReasons


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


def _host_conditions(policy: Policy, blocklist: BlocklistValues,
                     ) -> dict[str, Callable[[Any], ColumnElement[bool]]]:
    """The sighting conditions that depend on its host alone (blocklisted domain, denied or
    allowed domain), as functions of a host column."""
    conds: dict[str, Callable[[Any], ColumnElement[bool]]] = {}
    if blocklist.domains:
        conds["host_blocked"] = lambda host: blocked_host(host, blocklist)
    if policy.domains_deny:
        conds["host_denied"] = lambda host: or_(*[host_matches(host, d)
                                                 for d in policy.domains_deny])
    if policy.domains_allow:
        conds["host_allowed"] = lambda host: or_(*[host_matches(host, d)
                                                  for d in policy.domains_allow])
    return conds


def _sighting_flags(policy: Policy, s: Any, blocklist: BlocklistValues,
                    hp: Any) -> dict[str, ColumnElement[bool]]:
    """Per sighting, the conditions an image takes from any of its sightings; a flag the policy
    cannot raise (no trusted sources, no domain lists, no caption rule) is left out. The host
    conditions are read from the host pivot `hp` (None: none joined), which decides them once
    per host; a host it lacks (no host evidence) is tested on the sighting."""
    host_conds = _host_conditions(policy, blocklist)

    def on_host(name: str) -> ColumnElement[bool]:
        cond = host_conds[name]
        if hp is None:
            return cond(s.c.host)
        return func.coalesce(hp.c[name], case((cond(s.c.host), 1), else_=0)) == 1

    flags: dict[str, ColumnElement[bool]] = {
        "blocked": or_(on_host("host_blocked") if blocklist.domains else false(),
                       blocked_url(s.c.url, blocklist)),
    }
    if policy.trusted_sources:
        flags["has_trusted"] = and_(counted(s), _trusted(s, policy))
        flags["has_covering"] = and_(counted(s), _trusted(s, policy, covering=True))
    if policy.domains_deny:
        flags["denied"] = on_host("host_denied")
    if policy.domains_allow:
        flags["allowed_domain"] = and_(counted(s), or_(_trusted(s, policy),
                                                       on_host("host_allowed")))
    if policy.quality.require_caption:
        flags["has_caption"] = and_(counted(s), s.c.caption.isnot(None),
                                    func.trim(s.c.caption) != "")
    return flags


def _url_kind_aggs(policy: Policy, now: datetime, as_of: datetime | None, s: Any, hp: Any,
                   url_kinds: list[str], present: Collection[str], tokens: TokenDecisions,
                   joins: list[tuple[Any, ColumnElement[bool]]], dialect: str,
                   packed: list[str]) -> list[Any]:
    """Per URL-level kind, over the image's counted untrusted sightings: the worst status (NULL:
    none) and any staleness, each sighting's URL and host evidence combined (worst wins;
    neither present is unknown). Kinds with no URL-scope row in the catalog join no URL."""
    uc = _untrusted_counted(s, policy)
    greatest = func.greatest if dialect == "postgresql" else func.max  # scalar max on SQLite
    cols: list[Any] = []
    if packed:
        # Host-only kinds as one packed value per sighting: the image's worst is the OR of its
        # sightings' values, exact from the smallest and largest unless it has 3 or more
        # with different values (flagged; the caller decides those per kind).
        t = case((uc, func.coalesce(hp.c.t, packed_unknown(packed))), else_=None)
        cols += [func.min(t).label("h_min"), func.max(t).label("h_max"),
                 func.sum(case((uc, 1), else_=0)).label("n_uc")]
    for kind in [k for k in url_kinds if k not in packed]:
        h = func.coalesce(hp.c[f"st_{kind}"], -1)
        h_stale: Any = func.coalesce(hp.c[f"stale_{kind}"], 0)
        if kind in present:
            u, on = latest_of("url", s.c.url, kind, as_of, f"u_{kind.replace('-', '_')}")
            joins.append((u, on))
            none = u.c.kind.is_(None)
            rank = case((none, -1), else_=observation_rank(u, policy, tokens, kind))
            # Worst of the two, unknown when neither: the rank expression appears once.
            st: Any = greatest(rank, h, case((and_(none, h == -1), 1), else_=-1))
            u_stale = stale_flag(u, policy, now, kind)
            stale: Any = h_stale + case((u.c.kind.is_(None), 0), else_=u_stale)
        else:
            st, stale = case((h == -1, 1), else_=h), h_stale
        cols.append(func.max(case((uc, st), else_=None)).label(f"st_{kind}"))
        if policy.signals.max_age_of(kind) is not None:
            cols.append(func.max(case((uc, stale), else_=0)).label(f"stale_{kind}"))
    return cols


def _image_kind_cols(policy: Policy, now: datetime, as_of: datetime | None, img: Any,
                     img_kinds: list[str], present: Collection[str], tokens: TokenDecisions,
                     joins: list[tuple[Any, ColumnElement[bool]]], dialect: str) -> list[Any]:
    """Per image-level kind, the status (-1: no evidence) and staleness of the image's latest
    observation (`_image_evidence` reads them): as of a past time, one exact-key join per kind
    the catalog holds any image-scope row of; at present, `img_ev`, all of them packed."""
    cols: list[Any] = []
    held = [k for k in img_kinds if k in present]
    for kind in img_kinds:
        if kind not in present:
            cols += [literal(-1).label(f"i_st_{kind}"), literal(0).label(f"i_stale_{kind}")]
    if as_of is None and held:
        cols.append(_current_image_evidence(policy, now, img, held, tokens, dialect))
        return cols
    for kind in held:
        o, on = latest_of("image", img.c.sha256, kind, as_of, f"i_{kind.replace('-', '_')}")
        joins.append((o, on))
        none = o.c.kind.is_(None)
        cols += [func.max(case((none, -1), else_=observation_rank(o, policy, tokens, kind)))
                 .label(f"i_st_{kind}"),
                 func.max(case((none, 0), else_=stale_flag(o, policy, now, kind)))
                 .label(f"i_stale_{kind}")]
    return cols


def _current_image_evidence(policy: Policy, now: datetime, img: Any, held: list[str],
                            tokens: TokenDecisions, dialect: str) -> Any:
    """`img_ev`: the latest observation of each of the `held` kinds about the image, 3 bits
    each (kind i at bit 3i): its status rank + 1 (0: no evidence) and, above, its staleness.
    One correlated subquery, evaluated once per image: on SQLite one seek, since the kinds'
    rows are adjacent in signals_current's key (scope, subject, kind), instead of one join
    and one seek per kind."""
    c = CURRENT.alias("i_ev")
    value = case(*[(c.c.kind == kind, (observation_rank(c, policy, tokens, kind) + 1
                                       + 4 * stale_flag(c, policy, now, kind)) * (1 << 3 * i))
                   for i, kind in enumerate(held)], else_=0)
    # SQLite compares kinds bytewise, so the range holds them all; elsewhere a collation might
    # order them otherwise, so they are named.
    kinds = ([c.c.kind >= min(held), c.c.kind <= max(held)] if dialect == "sqlite"
             else [c.c.kind.in_(held)])
    return (select(func.sum(value)).where(c.c.scope == "image", c.c.subject == img.c.sha256,
                                          *kinds)
            .scalar_subquery().label("img_ev"))


def _image_evidence(g: Any, kind: str, held: list[str]) -> tuple[Any, Any]:
    """The status rank (-1: no evidence) and staleness of an image-level kind in `g`."""
    if f"i_st_{kind}" in g.c:
        return g.c[f"i_st_{kind}"], g.c[f"i_stale_{kind}"]
    value, shift = func.coalesce(g.c.img_ev, 0), 3 * held.index(kind)
    return (value.op(">>")(shift).op("&")(3) - 1, value.op(">>")(shift + 2).op("&")(1))


def _per_image(policy: Policy, now: datetime, as_of: datetime | None, tokens: TokenDecisions,
               blocklist: BlocklistValues, present: Mapping[str, Collection[str]],
               partition: tuple[int, int] | None, dialect: str, packed: list[str],
               keys: Sequence[str] | None) -> Subquery:
    """One row per image of the partition: its own columns and, over its sightings (any of
    them; NULLs when none), each flag, each URL-level kind's worst status and staleness, and
    each image-level kind's evidence. Images are walked in sha256 order and everything else is
    reached by key from there (sightings by image, evidence by exact key, host evidence from a
    per-host pivot), so the grouping by image needs no sort."""
    img, s = IMAGES.alias("img"), SIGHTINGS.alias("s")
    url_kinds = [k for k in policy.signals.kinds if k in m.URL_KINDS]
    img_kinds = [k for k in policy.signals.kinds if k in m.IMAGE_KINDS]
    hp = (scope_pivot(policy, now, as_of, "host", url_kinds, tokens, packed=packed,
                      key_flags=_host_conditions(policy, blocklist))
          if url_kinds else None)
    flags = _sighting_flags(policy, s, blocklist, hp)
    own = [img.c.sha256, img.c.width, img.c.height, img.c.format, img.c.decode_ok]
    allowed = sorted(policy.licenses.allowed_spdx)
    licensed = or_(_trusted(s, policy), s.c.license_spdx.in_(allowed) if allowed else false())
    # 2: a counted sighting is licensed (or trusted); 1: one has a license; 0: none has.
    license_class = case((counted(s), case((licensed, 2), (s.c.license_spdx.isnot(None), 1),
                                           else_=0)), else_=0)
    cols: list[Any] = [*own, func.max(license_class).label("license"),
                       *[func.max(case((cond, 1), else_=0)).label(n) for n, cond in flags.items()]]
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    if hp is not None:
        joins.append((hp, hp.c.k == s.c.host))
        cols += _url_kind_aggs(policy, now, as_of, s, hp, url_kinds, present.get("url", ()),
                               tokens, joins, dialect, packed)
    image_joins: list[tuple[Any, ColumnElement[bool]]] = []
    cols += _image_kind_cols(policy, now, as_of, img, img_kinds, present.get("image", ()),
                             tokens, image_joins, dialect)
    # Image evidence hangs off the image and is joined before its sightings (SQLite keeps the
    # written order of outer joins), so it is probed once per image rather than once per
    # sighting; URL and host evidence hang off the sighting.
    frm: Any = img
    for target, on in image_joins:
        frm = frm.outerjoin(target, on)
    frm = frm.outerjoin(s, s.c.image_sha256 == img.c.sha256)
    for target, on in joins:
        frm = frm.outerjoin(target, on)
    # On PostgreSQL the image's own columns are grouped by too (a partitioned catalog has no
    # primary key to make them functionally dependent); on SQLite the sha256 alone keeps the
    # walk in the order of its unique index.
    return (select(*cols).select_from(frm)
            .where(partition_filter(img.c.sha256, partition),
                   img.c.sha256.in_(keys) if keys is not None else true())
            .group_by(*(own if dialect == "postgresql" else own[:1])).subquery("per_image"))


def opted_out_keys(conn: Connection, as_of: datetime | None) -> set[str]:
    """The sha256s of the images an opt-out match in force covers, by image or by sighting.
    Read once for a whole-catalog evaluation (opt-outs are few next to images), so the
    compiled query joins nothing for them."""
    active = active_optouts(as_of).subquery("act")
    s = SIGHTINGS.alias("os")
    direct = select(active.c.image_sha256.label("sha")).where(active.c.image_sha256.isnot(None))
    via = select(s.c.image_sha256.label("sha")).join_from(active, s, active.c.sighting_id == s.c.id)
    both = union_all(direct, via).subquery("optu")
    return set(conn.execute(select(both.c.sha).where(both.c.sha.isnot(None)).distinct())
               .scalars())


def compile_policy(policy: Policy, now: datetime, tokens: TokenDecisions,
                   blocklist: BlocklistValues, *,
                   as_of: datetime | None = None,
                   partition: tuple[int, int] | None = None,
                   dialect: str = "sqlite",
                   present: Mapping[str, Collection[str]] | None = None,
                   pack_hosts: bool = True,
                   keys: Sequence[str] | None = None) -> CompiledPolicy:
    """One query: per image of the partition, `sha256` and `mask`, with bit i set when reason
    `codes[i]` applies (0: included, unless a near-duplicate).

    `tokens` (`load_token_decisions`) and `blocklist` (`blocklist_in_force`, same `as_of`) are
    read from the catalog just before; the query is only valid with them. `dialect` is the
    name of the backend it will run on. `present` maps "url" and "image" to the kinds with any
    observation of that scope (`kinds_present`); a kind left out is taken to have none
    (default: every kind is joined). `keys` restricts the query to those images.

    The query's third column, `ambiguous`, is 1 for an image whose host-only kinds (URL-level
    kinds with no URL-scope row, packed per host when `pack_hosts`) the packed form cannot
    decide; the caller decides those again with `pack_hosts=False`.

    Near-duplicates are added by the caller (see module docstring).
    """
    if present is None:
        present = {"url": m.URL_KINDS, "image": m.IMAGE_KINDS}
    host_only = [k for k in policy.signals.kinds
                 if k in m.URL_KINDS and k not in present.get("url", ())]
    packed = host_only if pack_hosts and len(host_only) > 1 else []
    g = _per_image(policy, now, as_of, tokens, blocklist, present, partition, dialect, packed,
                   keys)
    held_images = [k for k in policy.signals.kinds
                   if k in m.IMAGE_KINDS and k in present.get("image", ())]

    def one(name: str) -> Any:
        return g.c[name] if name in g.c else literal(0)

    # A reason whose condition is None is left out of the query's mask (packed host-only kinds:
    # the caller takes them from the `hosts` column).
    flags: list[tuple[str, ColumnElement[bool] | None]] = [
        (m.BLOCKLISTED, one("blocked") == 1),
        (m.DOMAIN_DENIED, one("denied") == 1),
    ]
    if policy.domains_allow:
        flags.append((m.DOMAIN_NOT_ALLOWED, one("allowed_domain") == 0))
    flags += [
        (m.LICENSE_UNKNOWN, g.c.license == 0),
        (m.LICENSE_NOT_ALLOWED, g.c.license == 1),
    ]
    status: Any
    stale: Any
    host_kinds: list[tuple[int, int, int, int]] = []
    for kind in policy.signals.kinds:
        if kind in packed:
            at = {which: 1 << (len(flags) + i)
                  for i, (_, which) in enumerate(_signal_codes(policy, kind))}
            host_kinds.append((packed_bit(packed, kind, 0), at["reserved"],
                               at.get("unknown", 0), at.get("stale", 0)))
            flags += [(code, None) for code, _ in _signal_codes(policy, kind)]
            continue
        if kind in m.URL_KINDS:
            raw: Any = g.c[f"st_{kind}"]
            # No untrusted counted sighting: not applicable if a trusted one exists, else unknown.
            status = case((raw.is_(None), case((one("has_trusted") == 1, 0), else_=1)),
                          else_=raw)
            stale = one(f"stale_{kind}")
        else:
            raw, raw_stale = _image_evidence(g, kind, held_images)
            covered = one("has_covering") == 1  # the contract covers embedded signals
            status = case((covered, 0), (raw == -1, 1), else_=raw)
            stale = case((covered, 0), else_=raw_stale)
        flags += _signal_flags(policy, kind, status, stale)
    flags += _quality_flags(policy, g, one("has_caption"))
    # One integer per image, bit i for reason i: the caller reads few columns per row, and
    # counts by distinct mask rather than by reason.
    bits = [case((cond, literal(1 << i, BigInteger)), else_=literal(0, BigInteger))
            for i, (_, cond) in enumerate(flags) if cond is not None]
    mask: ColumnElement[Any] = functools.reduce(operator.add, bits, literal(0, BigInteger))
    ambiguous: Any = literal(0)
    hosts: Any = literal(None, BigInteger)
    if packed:
        ambiguous = case((and_(g.c.n_uc >= 3, g.c.h_min != g.c.h_max), 1), else_=0)
        # The worst of the image's hosts; with no counted untrusted sighting, as for the other
        # URL-level kinds: not applicable if a trusted one exists, else unknown.
        hosts = func.coalesce(g.c.h_min.op("|")(g.c.h_max),
                              case((one("has_trusted") == 1, TRUSTED_ONLY), else_=NO_SIGHTING))
    query = select(g.c.sha256, mask.label("mask"), ambiguous.label("ambiguous"),
                   hosts.label("hosts"))
    return CompiledPolicy(query, tuple(code for code, _ in flags), HostReasons(tuple(host_kinds)))


def _signal_codes(policy: Policy, kind: str) -> list[tuple[str, str]]:
    """The reasons a counted kind can give, in mask order, each with what raises it."""
    codes = [(m.signal_reserved(kind), "reserved")]
    if kind not in policy.signals.unknown_allowed:
        codes.append((m.signal_unknown(kind), "unknown"))
    if policy.signals.max_age_of(kind) is not None:
        codes.append((m.evidence_stale(kind), "stale"))
    return codes


def _signal_flags(policy: Policy, kind: str, status: Any,
                  stale: Any) -> list[tuple[str, ColumnElement[bool] | None]]:
    raised = {"reserved": status == 2, "unknown": status == 1, "stale": stale > 0}
    return [(code, raised[which]) for code, which in _signal_codes(policy, kind)]


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
