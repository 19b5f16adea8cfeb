"""`provenance report ...`: open the catalog, run the aggregate queries, build plain reports.

Every report says what it covers in its meta: `generated_at`, `as_of` (None: now) and
`export_id` (None: the whole catalog).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from provenance.config import Settings
from provenance.db import export_queries
from provenance.db import report_queries as rq
from provenance.domain import iso, utcnow
from provenance.errors import BadInput
from provenance.reports import Report, build
from provenance.services.catalog import open_catalog
from provenance.services.exports import export_policy, revoked_keys

REPORTS = ("licenses", "domains", "signals", "optouts", "exports", "composition")
# Which reports --export and --as-of apply to (others refuse them rather than ignore them).
EXPORT_SCOPED = frozenset({"licenses", "domains", "exports", "composition"})
AS_OF_SCOPED = frozenset({"licenses", "domains", "signals", "optouts", "composition"})
TOP = 20


def _check_export(conn: Connection, export_id: int | None) -> None:
    if export_id is not None:
        export_queries.get_export(conn, export_id)  # BadInput when there is no such export


def _licenses(engine: Engine, export_id: int | None, as_of: datetime | None,
              meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        _check_export(conn, export_id)
        variants = rq.license_variants(conn, export_id, as_of)
        by_spdx = rq.images_by_license(conn, export_id, as_of)
    return build.licenses_report(variants, by_spdx, meta)


def _domains(engine: Engine, export_id: int | None, as_of: datetime | None,
             meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        _check_export(conn, export_id)
        rows = rq.domain_counts(conn, export_id, as_of)
    return build.domains_report(rows, meta)


def _signals(engine: Engine, export_id: int | None, as_of: datetime | None,
             meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        latest = rq.signal_status_counts(conn, as_of)
        observations = rq.signal_observation_counts(conn, as_of)
        return build.signals_report(latest, observations, rq.host_histories(conn, as_of), meta)


def _optouts(engine: Engine, export_id: int | None, as_of: datetime | None,
             meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        rows = rq.optout_register(conn, as_of)
    return build.optouts_report(rows, as_of, meta)


def _exports(engine: Engine, export_id: int | None, as_of: datetime | None,
             meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        _check_export(conn, export_id)
        rows = rq.export_rows(conn, export_id)
        lineage = {int(r.id): export_queries.get_export(conn, int(r.id)) for r in rows}
    # The export service's own revocation logic: members the catalog would no longer permit
    # under the policy each export was made with.
    revoked = {eid: len(revoked_keys(engine, row, export_policy(row)))
               for eid, row in lineage.items()}
    return build.exports_report(rows, revoked, meta)


def _ordered(rows: Sequence[Any], order: Sequence[str]) -> list[tuple[Any, int]]:
    position = {label: i for i, label in enumerate(order)}
    pairs = [(r.value, int(r.images)) for r in rows]
    return sorted(pairs, key=lambda p: (position.get(str(p[0]), len(order)), str(p[0])))


def _composition(engine: Engine, export_id: int | None, as_of: datetime | None,
                 meta: dict[str, Any]) -> Report:
    with engine.connect() as conn:
        _check_export(conn, export_id)
        totals = rq.image_totals(conn, export_id, as_of)
        images = rq.image_facets(conn, export_id, as_of)
        facets: dict[str, list[tuple[Any, int]]] = {
            "sources": [(r.value or "(unnamed)", int(r.images)) for r in
                        rq.sighting_facet(conn, "source_name", export_id, as_of)],
            "domains": [(r.value or build.NO_DOMAIN, int(r.images)) for r in
                        rq.sighting_facet(conn, "domain", export_id, as_of)[:TOP]],
            "licenses": [(r.value or build.NO_LICENSE, int(r.images)) for r in
                         rq.sighting_facet(conn, "license_spdx", export_id, as_of)],
            "formats": [(r.value, int(r.images)) for r in images["formats"]],
            "pixels": _ordered(images["pixels"], [b[0] for b in rq.PIXEL_BUCKETS]),
            "bytes": _ordered(images["bytes"], [b[0] for b in rq.BYTE_BUCKETS]),
            "tags": build.count_tags(rq.tag_lists(conn, export_id, as_of), TOP),
        }
        captioned = rq.captioned_images(conn, export_id, as_of)
    return build.composition_report(totals, facets, captioned, meta)


_BUILDERS: dict[str, Callable[[Engine, int | None, datetime | None, dict[str, Any]], Report]] = {
    "licenses": _licenses, "domains": _domains, "signals": _signals, "optouts": _optouts,
    "exports": _exports, "composition": _composition,
}


def build_report(settings: Settings, name: str, export_id: int | None = None,
                 as_of: datetime | None = None) -> Report:
    """Build one report; BadInput for an unknown name or an option it does not take."""
    if name not in _BUILDERS:
        raise BadInput(f"unknown report {name!r}; choose one of: {', '.join(REPORTS)}")
    if export_id is not None and name not in EXPORT_SCOPED:
        raise BadInput(f"report {name} covers the whole catalog; --export does not apply")
    if as_of is not None and name not in AS_OF_SCOPED:
        raise BadInput(f"report {name} has no --as-of (exports are checked as of now)")
    meta: dict[str, Any] = {"generated_at": iso(utcnow()), "as_of": iso(as_of),
                            "export_id": export_id}
    engine = open_catalog(settings)
    try:
        return _BUILDERS[name](engine, export_id, as_of, meta)
    finally:
        engine.dispose()
