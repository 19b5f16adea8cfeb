"""Batched loading of `PolicyFacts` for the pure decision path (few queries per 400 images).

Deliberately independent of the compiled query's matching logic: candidates are loaded broadly
(every observation of the image's URLs/hosts/sha, every blocklist entry that could cover a host
or URL) and the pure rules decide, so the agreement test compares two implementations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from provenance.db.policy_evidence import SIGNALS
from provenance.db.policy_sql import ENTRIES, IMAGES, LISTS, SIGHTINGS, active_optouts
from provenance.policy.facts import (
    BlocklistEntryFacts,
    ObservationFacts,
    OptOutHit,
    PolicyFacts,
    SightingFacts,
)
from provenance.policy.model import Policy
from provenance.policy.rules import blocklist_match

_CHUNK = 400


def load_facts(conn: Connection, policy: Policy, keys: Sequence[str], *,
               as_of: datetime | None = None,
               near_duplicates: Mapping[str, str] | None = None) -> dict[str, PolicyFacts]:
    """Facts for each existing image among `keys` (full sha256s); missing keys are left out."""
    wanted = sorted(set(keys))
    prefixes = _url_prefix_entries(conn, as_of)
    out: dict[str, PolicyFacts] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        out.update(_load_chunk(conn, policy, chunk, as_of, prefixes, near_duplicates or {}))
    return out


def _load_chunk(conn: Connection, policy: Policy, chunk: list[str], as_of: datetime | None,
                prefixes: list[BlocklistEntryFacts],
                dups: Mapping[str, str]) -> dict[str, PolicyFacts]:
    images = conn.execute(select(IMAGES).where(IMAGES.c.sha256.in_(chunk))).all()
    sightings: dict[str, list[SightingFacts]] = defaultdict(list)
    for row in conn.execute(select(SIGHTINGS).where(SIGHTINGS.c.image_sha256.in_(chunk))
                            .order_by(SIGHTINGS.c.id)):
        sightings[row.image_sha256].append(SightingFacts(
            id=row.id, status=row.status, url=row.url, host=row.host, domain=row.domain,
            source_name=row.source_name, license_spdx=row.license_spdx,
            license_raw=row.license_raw, caption=row.caption))
    all_s = [s for group in sightings.values() for s in group]
    obs = _observations(conn, policy, as_of, {
        "url": {s.url for s in all_s if s.url},
        "host": {s.host for s in all_s if s.host},
        "image": set(chunk),
    })
    hits = _optouts(conn, as_of, chunk, {s.id: sha for sha, g in sightings.items() for s in g})
    domains = _domain_entries(conn, as_of, {s.host for s in all_s if s.host})
    out: dict[str, PolicyFacts] = {}
    for row in images:
        mine = tuple(sightings.get(row.sha256, ()))
        subjects = {("image", row.sha256)} | {("url", s.url) for s in mine if s.url} | {
            ("host", s.host) for s in mine if s.host}
        entries = [e for e in [*domains, *prefixes] if any(blocklist_match(s, e.kind, e.value)
                                                          for s in mine)]
        out[row.sha256] = PolicyFacts(
            sha256=row.sha256, decode_ok=bool(row.decode_ok), width=row.width,
            height=row.height, format=row.format, phash=row.phash, sightings=mine,
            observations=tuple(o for key in sorted(subjects) for o in obs.get(key, ())),
            optouts=tuple(hits.get(row.sha256, ())), blocklist_entries=tuple(entries),
            near_duplicate_of=dups.get(row.sha256),
        )
    return out


def _observations(conn: Connection, policy: Policy, as_of: datetime | None,
                  subjects: Mapping[str, set[str]],
                  ) -> dict[tuple[str, str], list[ObservationFacts]]:
    """Latest observation per (scope, subject, kind), grouped by (scope, subject)."""
    found: dict[tuple[str, str], list[ObservationFacts]] = defaultdict(list)
    for scope, values in subjects.items():
        ordered = sorted(values)
        for start in range(0, len(ordered), _CHUNK):
            conds: list[Any] = [SIGNALS.c.scope == scope,
                                SIGNALS.c.subject.in_(ordered[start:start + _CHUNK]),
                                SIGNALS.c.kind.in_(policy.signals.kinds)]
            if as_of is not None:
                conds.append(SIGNALS.c.observed_at <= as_of)
            rank = func.row_number().over(
                partition_by=(SIGNALS.c.subject, SIGNALS.c.kind),
                order_by=(SIGNALS.c.observed_at.desc(), SIGNALS.c.id.desc())).label("rn")
            ranked = select(SIGNALS, rank).where(*conds).subquery()
            for row in conn.execute(select(ranked).where(ranked.c.rn == 1)
                                    .order_by(ranked.c.subject, ranked.c.kind)):
                found[(scope, row.subject)].append(ObservationFacts(
                    id=row.id, scope=row.scope, subject=row.subject, kind=row.kind,
                    status=row.status, observed_at=row.observed_at,
                    tokens_reserved=row.tokens_reserved, tokens_unknown=row.tokens_unknown,
                    tokens_allowed=row.tokens_allowed, source=row.source, detail=row.detail,
                    data=row.data))
    return found


def _optouts(conn: Connection, as_of: datetime | None, chunk: list[str],
             sighting_image: Mapping[int, str]) -> dict[str, list[OptOutHit]]:
    q = active_optouts(as_of).subquery()
    ids = sorted(sighting_image)
    conds = [q.c.image_sha256.in_(chunk)]
    for start in range(0, len(ids), _CHUNK):
        conds.append(q.c.sighting_id.in_(ids[start:start + _CHUNK]))
    hits: dict[str, dict[int, OptOutHit]] = defaultdict(dict)
    wanted = set(chunk)
    for row in conn.execute(select(q).where(or_(*conds)).order_by(q.c.request_id)):
        # A match names an image, a sighting, or both: each covers its image.
        targets = {row.image_sha256} & wanted
        if row.sighting_id in sighting_image:
            targets.add(sighting_image[row.sighting_id])
        for sha in sorted(targets):
            hits[sha].setdefault(
                row.request_id, OptOutHit(row.request_id, row.how, row.reference, row.requester))
    return {sha: list(by_id.values()) for sha, by_id in hits.items()}


def _suffixes(host: str) -> Iterable[str]:
    parts = host.split(".")
    return (".".join(parts[i:]) for i in range(len(parts)))


def _domain_entries(conn: Connection, as_of: datetime | None,
                    hosts: set[str]) -> list[BlocklistEntryFacts]:
    values = sorted({suffix for h in hosts for suffix in _suffixes(h)})
    out: list[BlocklistEntryFacts] = []
    for start in range(0, len(values), _CHUNK):
        out.extend(_entries(conn, as_of, and_(ENTRIES.c.kind == "domain",
                                              ENTRIES.c.value.in_(values[start:start + _CHUNK]))))
    return out


def _url_prefix_entries(conn: Connection, as_of: datetime | None) -> list[BlocklistEntryFacts]:
    # URL-prefix lists are short in practice (court lists name domains): load them once.
    return _entries(conn, as_of, ENTRIES.c.kind == "url-prefix")


def _entries(conn: Connection, as_of: datetime | None, cond: Any) -> list[BlocklistEntryFacts]:
    conds = [cond] + ([LISTS.c.imported_at <= as_of] if as_of is not None else [])
    stmt = (select(LISTS.c.name, LISTS.c.version, ENTRIES.c.kind, ENTRIES.c.value)
            .join_from(ENTRIES, LISTS, ENTRIES.c.list_id == LISTS.c.id).where(*conds)
            .order_by(LISTS.c.name, LISTS.c.version, ENTRIES.c.kind, ENTRIES.c.value))
    return [BlocklistEntryFacts(r.name, r.version, r.kind, r.value) for r in conn.execute(stmt)]
