"""`provenance fetch`: turn pending URL sightings into catalogued images, politely.

Per run: pending sightings are read in id order (keyset windows, optionally one host-bucket
partition). URLs of blocklisted domains/prefixes and URLs under an active opt-out request are
skipped before anything is contacted. For every other host the signal documents (robots.txt,
ai.txt, tdmrep.json, RSL) are loaded first, via the catalog cache; a URL they reserve, or
that they leave uncheckable, is skipped without being requested. The rest are fetched on a
thread pool (HostScheduler keeps the per-host bounds) and catalogued through the same code
path as ingest (analyze_bytes, record_images); the bytes go to the ContentStore.

Each batch of finished URLs is committed as soon as it completes, so an interrupted run loses
nothing that finished and a re-run continues with what is still pending. Every attempt is a
fetch_attempts row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from provenance.config import Settings
from provenance.db.bucket_locks import claimed_groups
from provenance.db.catalog import finish_run, start_run
from provenance.domain import utcnow
from provenance.eventlog import append_event
from provenance.ingest.keys import url_bucket
from provenance.net import DEFAULT_MAX_BYTES, SafeHttp
from provenance.services import fetch_records as records
from provenance.services.catalog import open_catalog
from provenance.services.fetch_scheduler import DocsTask, HostScheduler, UrlTask
from provenance.services.fetch_work import (
    FAILED,
    FETCHED,
    RETRY,
    SKIPPED_BLOCKLISTED,
    SKIPPED_OPTOUT,
    SKIPPED_RESERVED,
    SKIPPED_UNKNOWN,
    Job,
    WorkContext,
    WorkResult,
    fetch_one,
)
from provenance.services.host_signals import HostDocs, host_documents
from provenance.services.signals import product_token
from provenance.signals.robots import crawl_delay
from provenance.signals.tokens import default_tokens, normalize_tokens
from provenance.store import ContentStore

WINDOW = 5_000
# Crawl-delay is honored up to this many seconds between requests to one host.
MAX_CRAWL_DELAY_S = 60.0


@dataclass(frozen=True)
class FetchOptions:
    """How one fetch run behaves (the CLI flags)."""

    limit: int | None = None
    concurrency: int = 16
    per_host: int = 2
    delay: float = 0.0
    timeout: float = 10.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_attempts: int = 3
    partition: tuple[int, int] | None = None


@dataclass
class FetchSummary:
    """Counts of one run; `pending` is what is still pending afterwards (in the partition)."""

    run_id: int | None = None
    fetched: int = 0
    skipped_reserved: int = 0
    skipped_unknown: int = 0
    skipped_blocklisted: int = 0
    skipped_optout: int = 0
    failed: int = 0
    retries: int = 0
    pending: int = 0
    planned: int = 0
    bytes: int = 0
    hosts: set[str] = field(default_factory=set)

    @property
    def done(self) -> int:
        return (
            self.fetched
            + self.skipped_reserved
            + self.skipped_unknown
            + self.skipped_blocklisted
            + self.skipped_optout
            + self.failed
        )

    def count(self, result: WorkResult) -> None:
        attr = {
            FETCHED: "fetched",
            SKIPPED_RESERVED: "skipped_reserved",
            SKIPPED_UNKNOWN: "skipped_unknown",
            SKIPPED_BLOCKLISTED: "skipped_blocklisted",
            SKIPPED_OPTOUT: "skipped_optout",
            FAILED: "failed",
            RETRY: "retries",
        }[result.outcome]
        setattr(self, attr, getattr(self, attr) + 1)
        if result.outcome == FETCHED and result.response is not None:
            self.bytes += len(result.response.body)

    def to_json(self) -> dict[str, Any]:
        """The CLI.md shape (fetched, skipped_reserved, failed, pending) plus detail keys."""
        return {
            "fetched": self.fetched,
            "skipped_reserved": self.skipped_reserved,
            "failed": self.failed,
            "pending": self.pending,
            "skipped_unknown": self.skipped_unknown,
            "skipped_blocklisted": self.skipped_blocklisted,
            "skipped_optout": self.skipped_optout,
            "retries": self.retries,
            "bytes": self.bytes,
            "hosts": len(self.hosts),
            "run_id": self.run_id,
        }


Progress = Callable[[FetchSummary], None]


def fetch_tokens(user_agent: str) -> tuple[str, tuple[str, ...]]:
    """(own product token, every token evaluated): ours first, then the shipped AI list."""
    own = product_token(user_agent)
    return own, normalize_tokens([own, *default_tokens()])


def run_fetch(
    settings: Settings,
    options: FetchOptions,
    progress: Progress | None = None,
    command: str = "fetch",
) -> FetchSummary:
    """Fetch pending URLs (see the module docstring). Returns the run's counts."""
    own, tokens = fetch_tokens(settings.user_agent)
    engine = open_catalog(settings)
    summary = FetchSummary()
    partition = f"{options.partition[0]}/{options.partition[1]}" if options.partition else None
    with engine.begin() as conn:
        summary.run_id = start_run(conn, "fetch", utcnow(), command=command, partition=partition)
        pending = records.count_pending(conn, options.partition)
    summary.planned = pending if options.limit is None else min(pending, options.limit)
    http = SafeHttp(
        settings.user_agent,
        settings.allow_private,
        timeout=options.timeout,
        max_bytes=options.max_bytes,
        per_host_limit=options.per_host,
    )
    ctx = WorkContext(
        http, ContentStore(settings.store_dir), tokens, options.max_bytes, options.max_attempts
    )
    status = "failed"
    try:
        for window in _windows(engine, options):
            # Only hosts whose bucket lock this process holds (PostgreSQL; see bucket_locks).
            for jobs in claimed_groups(engine, window, _job_bucket, lambda j: j.sighting_id):
                _crawl(engine, ctx, own, options, jobs, summary, progress)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        http.close()
        with engine.begin() as conn:
            summary.pending = records.count_pending(conn, options.partition)
            finish_run(conn, summary.run_id, utcnow(), status, summary.to_json())
            append_event(conn, "fetch", {**summary.to_json(), "status": status}, utcnow())
        engine.dispose()
    return summary


def _job_bucket(job: Job) -> int | None:
    return url_bucket(job.url)


def _windows(engine: Engine, options: FetchOptions) -> Iterator[list[Job]]:
    after, left = 0, options.limit
    while left is None or left > 0:
        size = WINDOW if left is None else min(WINDOW, left)
        with engine.connect() as conn:
            rows = records.pending_window(conn, after, size, options.partition)
        if not rows:
            return
        after = rows[-1].sighting_id
        if left is not None:
            left -= len(rows)
        yield rows


def _crawl(
    engine: Engine,
    ctx: WorkContext,
    own_token: str,
    options: FetchOptions,
    jobs: list[Job],
    summary: FetchSummary,
    progress: Progress | None,
) -> None:
    """Fetch one window of jobs to completion, committing each batch of finished URLs."""
    with engine.connect() as conn:
        exclusions = records.load_exclusions(conn)
    sched = HostScheduler(options.per_host, options.delay)
    excluded: list[WorkResult] = []
    for job in jobs:
        hit = exclusions.match(job.url)
        if not job.origin:
            excluded.append(WorkResult(job, FAILED, "not an http(s) URL"))
        elif hit is not None:
            excluded.append(WorkResult(job, hit[0], hit[1]))
        else:
            sched.add(job, time.monotonic())
            summary.hosts.add(job.origin)
    _commit(engine, excluded, {}, ctx, summary, progress)
    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="fetch")
    inflight: dict[Future[Any], DocsTask | UrlTask] = {}
    docs_by_origin: dict[str, HostDocs] = {}
    try:
        while True:
            now = time.monotonic()
            while len(inflight) < options.concurrency and (task := sched.take(now)):
                inflight[_submit(pool, engine, ctx, task, summary.run_id)] = task
            hint = None if len(inflight) >= options.concurrency else sched.wait_hint(now)
            if not inflight:
                if hint is None:
                    return
                time.sleep(hint)
                continue
            done, _ = wait(inflight, timeout=hint, return_when=FIRST_COMPLETED)
            finished: list[WorkResult] = []
            for fut in done:
                task = inflight.pop(fut)
                now = time.monotonic()
                if isinstance(task, DocsTask):
                    docs: HostDocs = fut.result()
                    docs_by_origin[task.origin] = docs
                    delay = crawl_delay(docs.robots, own_token)
                    capped = None if delay is None else min(delay, MAX_CRAWL_DELAY_S)
                    sched.docs_loaded(task.origin, docs, capped, now)
                    continue
                result: WorkResult = fut.result()
                if result.outcome == RETRY:
                    sched.retry(result.job, result.retry_in or 0.0, now)
                else:
                    sched.finished(result.job.origin, now)
                finished.append(result)
            _commit(engine, finished, docs_by_origin, ctx, summary, progress)
    finally:
        # On Ctrl-C or an error, do not wait for queued work; in-flight requests end at
        # their deadlines and their results are simply not recorded (they stay pending).
        pool.shutdown(wait=False, cancel_futures=True)


def _submit(
    pool: ThreadPoolExecutor,
    engine: Engine,
    ctx: WorkContext,
    task: DocsTask | UrlTask,
    run_id: int | None,
) -> Future[Any]:
    if isinstance(task, DocsTask):
        return pool.submit(_load_docs, engine, ctx, task.origin, run_id)
    return pool.submit(fetch_one, ctx, task.job, task.docs, utcnow())


def _load_docs(engine: Engine, ctx: WorkContext, origin: str, run_id: int | None) -> HostDocs:
    """Host documents from the catalog cache or the network, recorded in their own
    transaction (on a worker thread: fetching them is network time)."""
    with engine.begin() as conn:
        return host_documents(conn, ctx.http, origin, utcnow(), tokens=ctx.tokens, run_id=run_id)


def _commit(
    engine: Engine,
    results: list[WorkResult],
    docs_by_origin: dict[str, HostDocs],
    ctx: WorkContext,
    summary: FetchSummary,
    progress: Progress | None,
) -> None:
    if not results:
        return
    with engine.begin() as conn:
        records.record_results(
            conn,
            results,
            docs_by_origin,
            ctx.tokens,
            ctx.http.user_agent,
            summary.run_id,
            utcnow(),
        )
    for result in results:
        summary.count(result)
    if progress is not None:
        progress(summary)
