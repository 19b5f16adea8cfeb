"""`signals refresh`: re-check the host documents of the hosts of catalogued sightings and
record fresh url-scope verdicts for every sighting URL of those hosts.

This is how images ingested from img2dataset output (which never read robots.txt) get their
robots.txt / ai.txt / TDMRep / Content-Signal / Content-Usage / RSL verdicts without being
downloaded again. History is kept: every refresh adds observations, none is overwritten.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.engine import Connection

from provenance.config import Settings
from provenance.db.models import Sighting
from provenance.db.signal_store import latest_by_source, record_observations
from provenance.domain import Observation, Scope, SignalKind, iso, utcnow
from provenance.errors import BadInput
from provenance.eventlog import append_event
from provenance.net import SafeHttp
from provenance.services.catalog import open_catalog
from provenance.services.host_signals import (
    DEFAULT_MAX_AGE,
    ROBOTS_PATH,
    Fetched,
    assemble,
    document_observations,
    fetch_host_documents,
    fetch_licenses,
    host_of,
    license_body,
    origin_of,
    robots_doc,
)
from provenance.services.signals import catalog_tokens, evaluate_and_record_urls, url_response
from provenance.signals.rsl import rsl_locations

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
HOSTS_PER_BATCH = 100
WORKERS = 8
REFRESH_TIMEOUT_S = 10.0


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `45s`, `2w` as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise BadInput(f"--older-than must look like 7d, 12h, 30m, 45s or 2w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def sighting_urls(conn: Connection, domain: str | None) -> dict[str, list[str]]:
    """Distinct http(s) sighting URLs by origin, optionally only a domain and its subdomains."""
    sightings = Sighting.__table__.c
    stmt = select(sightings.url).where(sightings.url.is_not(None)).distinct()
    if domain:
        d = domain.strip().lower().rstrip(".")
        stmt = stmt.where(
            or_(
                sightings.domain == d,
                sightings.host == d,
                sightings.host.endswith("." + d, autoescape=True),
            )
        )
    by_origin: dict[str, list[str]] = defaultdict(list)
    for (url,) in conn.execute(stmt.order_by(sightings.url)):
        try:
            by_origin[origin_of(url)].append(url)
        except BadInput:
            continue  # file paths and other schemes have no host documents
    return dict(sorted(by_origin.items()))


def stale_origins(
    conn: Connection, origins: Sequence[str], now: datetime, older_than: timedelta | None
) -> list[str]:
    """Origins whose robots.txt was never observed or last observed before now - older_than."""
    if older_than is None:
        return list(origins)
    sources = {o: o + ROBOTS_PATH for o in origins}
    latest = latest_by_source(
        conn, Scope.HOST, {host_of(o) for o in origins}, sources.values(), [SignalKind.ROBOTS]
    )
    cutoff = now - older_than
    stale = []
    for o in origins:
        seen = latest.get((sources[o], SignalKind.ROBOTS))
        if seen is None or seen.observed_at < cutoff:
            stale.append(o)
    return stale


@dataclass
class HostFetch:
    """What the network said about one origin in this refresh."""

    origin: str
    documents: list[Fetched]
    licenses: list[Fetched]
    headers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    url_licenses: list[Fetched] = field(default_factory=list)


def _fetch_host(http: SafeHttp, origin: str) -> HostFetch:
    documents = fetch_host_documents(http, origin)
    robots = robots_doc(next(f for f in documents if f.kind is SignalKind.ROBOTS))
    return HostFetch(origin, documents, fetch_licenses(http, rsl_locations(robots, [])))


def _fetch_headers(http: SafeHttp, url: str) -> tuple[str, list[tuple[str, str]] | None]:
    result = url_response(http, url)
    return url, (result.headers if result.status is not None else None)


@dataclass
class RefreshSummary:
    hosts: int = 0
    hosts_skipped: int = 0
    hosts_unreachable: int = 0
    urls: int = 0
    observations: int = 0
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, observations: Sequence[Observation]) -> None:
        self.observations += len(observations)
        for obs in observations:
            if obs.scope is Scope.URL:
                kind = str(obs.signal.kind)
                self.by_kind.setdefault(kind, Counter())[str(obs.signal.status)] += 1

    def to_json(
        self, with_headers: bool, domain: str | None, checked_at: datetime
    ) -> dict[str, Any]:
        return {
            "checked_at": iso(checked_at),
            "domain": domain,
            "with_headers": with_headers,
            "hosts_checked": self.hosts,
            "hosts_skipped": self.hosts_skipped,
            "hosts_unreachable": self.hosts_unreachable,
            "urls_evaluated": self.urls,
            "observations_recorded": self.observations,
            "url_verdicts": {
                kind: {s: counts.get(s, 0) for s in ("allowed", "reserved", "unknown")}
                for kind, counts in sorted(self.by_kind.items())
            },
        }


def _record_host(
    engine: Engine,
    fetch: HostFetch,
    urls: list[str],
    tokens: Sequence[str],
    now: datetime,
    summary: RefreshSummary,
) -> None:
    """One transaction per host: its documents, then its URLs' verdicts."""
    expires = now + DEFAULT_MAX_AGE
    docs = {f.kind: f for f in fetch.documents}
    licenses = {f.source: f for f in fetch.licenses}
    host = assemble(fetch.origin, docs, licenses, now, expires, from_cache=False)
    extra_rsl = {f.source: b for f in fetch.url_licenses if (b := license_body(f)) is not None}
    observations, raw = document_observations(
        [*fetch.documents, *fetch.licenses, *fetch.url_licenses],
        fetch.origin,
        tokens,
        now,
        expires,
        None,
    )
    with engine.begin() as conn:
        record_observations(conn, observations, raw)
        recorded = evaluate_and_record_urls(
            conn, urls, {fetch.origin: host}, tokens, now, None, fetch.headers or None, extra_rsl
        )
    summary.add([*observations, *recorded])
    summary.hosts += 1
    summary.urls += len(urls)
    if host.robots.state == "unreachable":
        summary.hosts_unreachable += 1


def _fetch_batch(
    http: SafeHttp, origins: Sequence[str], by_origin: dict[str, list[str]], with_headers: bool
) -> list[HostFetch]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        fetches = list(pool.map(lambda o: _fetch_host(http, o), origins))
        if with_headers:
            urls = [u for o in origins for u in by_origin[o]]
            seen = dict(pool.map(lambda u: _fetch_headers(http, u), urls))
            for fetch in fetches:
                fetch.headers = {
                    u: h for u in by_origin[fetch.origin] if (h := seen.get(u)) is not None
                }
                named = {
                    loc
                    for h in fetch.headers.values()
                    for loc in rsl_locations(None, h, fetch.origin)
                }
                known = {f.source for f in fetch.licenses}
                fetch.url_licenses = fetch_licenses(http, sorted(named - known))
    return fetches


def refresh(
    settings: Settings,
    domain: str | None = None,
    older_than: str | None = None,
    with_headers: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Re-check host documents of catalogued hosts and record fresh URL verdicts.

    `domain`: only sightings of that registrable domain or host suffix. `older_than`: only
    hosts whose robots.txt observation is older than this duration (or missing).
    `with_headers`: also HEAD every URL (at most 2 requests per host at once) for header-level
    signals; without it, URLs are re-evaluated with the headers they last sent, if recorded.
    """
    age = parse_duration(older_than) if older_than is not None else None
    when = now or utcnow()
    tokens = catalog_tokens(settings)
    engine = open_catalog(settings)
    summary = RefreshSummary()
    try:
        with engine.connect() as conn:
            by_origin = sighting_urls(conn, domain)
            stale = stale_origins(conn, list(by_origin), when, age)
        summary.hosts_skipped = len(by_origin) - len(stale)
        with SafeHttp(
            settings.user_agent, settings.allow_private, timeout=REFRESH_TIMEOUT_S, per_host_limit=2
        ) as http:
            for start in range(0, len(stale), HOSTS_PER_BATCH):
                batch = stale[start : start + HOSTS_PER_BATCH]
                for fetch in _fetch_batch(http, batch, by_origin, with_headers):
                    _record_host(engine, fetch, by_origin[fetch.origin], tokens, when, summary)
        with engine.begin() as conn:  # one summary event per refresh, not one per observation
            append_event(conn, "signals-refresh", summary.to_json(with_headers, domain, when),
                         utcnow())
    finally:
        engine.dispose()
    return summary.to_json(with_headers, domain, when)
