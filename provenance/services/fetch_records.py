"""Catalog reads and writes of `provenance fetch` (SQLAlchemy Core over the models): pending
work in keyset windows, the blocklist and opt-out exclusions, and recording each batch of
finished attempts (fetch_attempts, images via the ingest code path, sighting status, and the
URL-level signal observations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, Connection, and_, func, select

from provenance.db.catalog import mark_fetched, record_images
from provenance.db.models import Base, Blocklist, BlocklistEntry, OptOutRequest, Sighting
from provenance.errors import BadInput
from provenance.ingest.keys import normalize_host, url_bucket
from provenance.optout import url_key
from provenance.services.fetch_work import (
    FAILED,
    FETCHED,
    RETRY,
    SKIPPED_BLOCKLISTED,
    SKIPPED_OPTOUT,
    SKIPPED_RESERVED,
    SKIPPED_UNKNOWN,
    Job,
    WorkResult,
)
from provenance.services.host_signals import HostDocs, origin_of
from provenance.services.optout import apply_standing_optouts
from provenance.services.signals import evaluate_and_record_urls

ATTEMPTS = Base.metadata.tables["fetch_attempts"]
SIGHTING_STATUS = {FETCHED: "ok", FAILED: "failed"}
SIGNAL_OUTCOMES = (FETCHED, SKIPPED_RESERVED, SKIPPED_UNKNOWN)
BUCKETS = 65536


def bucket_range(partition: tuple[int, int]) -> tuple[int, int]:
    """Host buckets [lo, hi) of partition I of N, the same split as
    `ingest.keys.partition_of_bucket` (bucket * N >> 16 == I)."""
    index, count = partition
    return -(-index * BUCKETS // count), -(-(index + 1) * BUCKETS // count)


def _pending(partition: tuple[int, int] | None) -> ColumnElement[bool]:
    cond = and_(Sighting.status == "pending", Sighting.url.is_not(None))
    if partition is not None:
        lo, hi = bucket_range(partition)
        cond = and_(cond, Sighting.host_bucket >= lo, Sighting.host_bucket < hi)
    return cond


def pending_window(
    conn: Connection, after_id: int, size: int, partition: tuple[int, int] | None
) -> list[Job]:
    """Up to `size` pending URL sightings with id > after_id, in id order."""
    rows = conn.execute(
        select(Sighting.id, Sighting.url)
        .where(_pending(partition), Sighting.id > after_id)
        .order_by(Sighting.id)
        .limit(size)
    ).all()
    jobs: list[Job] = []
    for sighting_id, url in rows:
        assert url is not None  # selected with url IS NOT NULL
        try:
            origin = origin_of(url)
        except BadInput:
            origin = ""  # recorded as failed by the caller, never contacted
        jobs.append(Job(sighting_id, url, origin))
    return jobs


def count_pending(conn: Connection, partition: tuple[int, int] | None) -> int:
    """Pending URL sightings left (in the partition)."""
    return int(
        conn.execute(
            select(func.count()).select_from(Sighting).where(_pending(partition))
        ).scalar_one()
    )


def _suffixes(host: str) -> list[str]:
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


Hit = tuple[str, str]  # (outcome, reason)


@dataclass
class Exclusions:
    """Blocklist entries and active URL/prefix/domain opt-outs, matched before any request.

    A domain entry covers the domain and its subdomains. Blocklist prefixes match the URL as
    written (as export's policy rule does); opt-out URLs and prefixes match the URL's
    scheme-less key (`provenance.optout.url_key`), as the opt-out requests are stored.
    """

    domains: dict[str, Hit] = field(default_factory=dict)
    prefixes: list[tuple[str, Hit]] = field(default_factory=list)
    optout_urls: dict[str, Hit] = field(default_factory=dict)
    optout_prefixes: list[tuple[str, Hit]] = field(default_factory=list)

    def match(self, url: str) -> Hit | None:
        """(outcome, reason) if the URL must not be contacted, else None. Blocklists first."""
        try:
            host = normalize_host(urlsplit(url).hostname or "")
        except ValueError:
            host = ""
        for suffix in _suffixes(host) if host else []:
            if suffix in self.domains:
                return self.domains[suffix]
        for prefix, hit in self.prefixes:
            if url.startswith(prefix):
                return hit
        key = url_key(url)
        if key is None:
            return None
        if key in self.optout_urls:
            return self.optout_urls[key]
        return next((hit for prefix, hit in self.optout_prefixes if key.startswith(prefix)), None)


def load_exclusions(conn: Connection) -> Exclusions:
    """Every blocklist entry, then every active url / url-prefix / domain opt-out."""
    found = Exclusions()
    blocked = conn.execute(
        select(Blocklist.name, Blocklist.version, BlocklistEntry.kind, BlocklistEntry.value)
        .join(Blocklist, Blocklist.id == BlocklistEntry.list_id)
        .order_by(Blocklist.id, BlocklistEntry.kind, BlocklistEntry.value)
    ).all()
    for name, version, kind, value in blocked:
        hit = (SKIPPED_BLOCKLISTED, f"blocklisted by {name} {version} ({kind} {value})")
        if kind == "domain":
            found.domains.setdefault(normalize_host(value), hit)
        elif kind == "url-prefix":
            found.prefixes.append((value, hit))
    optouts = conn.execute(
        select(OptOutRequest.id, OptOutRequest.scope_kind, OptOutRequest.scope_value)
        .where(
            OptOutRequest.status == "active",
            OptOutRequest.scope_kind.in_(["url", "url-prefix", "domain"]),
        )
        .order_by(OptOutRequest.id)
    ).all()
    for request_id, kind, value in optouts:
        hit = (SKIPPED_OPTOUT, f"opted out by request {request_id} ({kind} {value})")
        if kind == "domain":
            found.domains.setdefault(value, hit)  # a blocklist hit on the same domain wins
        elif kind == "url":
            found.optout_urls.setdefault(value, hit)
        else:
            found.optout_prefixes.append((value, hit))
    return found


def _attempt_row(
    result: WorkResult, run_id: int | None, user_agent: str, now: datetime
) -> dict[str, Any]:
    resp = result.response
    error = result.reason
    if resp is not None and resp.error and resp.error not in (error or ""):
        error = f"{error}: {resp.error}" if error else resp.error
    return {
        "sighting_id": result.job.sighting_id,
        "run_id": run_id,
        "url": result.job.url,
        "attempted_at": now,
        "outcome": result.outcome,
        "status_code": resp.status if resp is not None else None,
        "error": error,
        "bytes": len(resp.body) if resp is not None else None,
        "elapsed_ms": resp.elapsed_ms if resp is not None else None,
        "user_agent": user_agent if resp is not None else None,
        "image_sha256": result.facts.sha256 if result.facts is not None else None,
        "host_bucket": url_bucket(result.job.url),
    }


def record_results(
    conn: Connection,
    results: Sequence[WorkResult],
    docs_by_origin: dict[str, HostDocs],
    tokens: Sequence[str],
    user_agent: str,
    run_id: int | None,
    now: datetime,
) -> None:
    """Write one batch of attempts in the caller's transaction.

    Images go through `record_images` (the ingest path). A retry leaves the sighting pending;
    every other outcome settles it: `ok` with its image, `skipped` or `failed` with the
    reason. URL-level signals are recorded for URLs whose host documents were read, with
    the response headers when a 2xx response arrived.
    """
    conn.execute(ATTEMPTS.insert(), [_attempt_row(r, run_id, user_agent, now) for r in results])
    facts = [r.facts for r in results if r.outcome == FETCHED and r.facts is not None]
    record_images(conn, facts, run_id, now)
    for r in results:
        if r.outcome == RETRY:
            continue
        sha = r.facts.sha256 if r.outcome == FETCHED and r.facts is not None else None
        status = SIGHTING_STATUS.get(r.outcome, "skipped")
        mark_fetched(conn, r.job.sighting_id, sha, now, status=status, error=r.reason)
    fetched = [r for r in results if r.outcome == FETCHED and r.facts is not None]
    apply_standing_optouts(  # active opt-outs apply to what this batch fetched
        conn,
        image_shas=sorted({r.facts.sha256 for r in fetched if r.facts is not None}),
        sighting_ids=[r.job.sighting_id for r in fetched],
        now=now,
    )
    checked = [
        r for r in results if r.outcome in SIGNAL_OUTCOMES and r.job.origin in docs_by_origin
    ]
    if checked:
        headers = {
            r.job.url: r.response.headers
            for r in checked
            if r.response is not None and r.response.ok
        }
        urls = sorted({r.job.url for r in checked})
        evaluate_and_record_urls(conn, urls, docs_by_origin, tokens, now, run_id, headers)
