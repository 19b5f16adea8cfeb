"""The ingest use case: sources -> sighting inputs -> hashed in a process pool -> batched writes.

Units of work are input files (an image, a tar shard, a manifest), taken in path order; with
`--partition I/N` unit k belongs to partition k mod N. Each batch is one transaction and every
write is keyed naturally (sha256, sighting key), so an interrupted run re-runs to the same state.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from provenance.config import Settings
from provenance.db import catalog as db
from provenance.db.optout_queries import any_active_request
from provenance.domain import ImageFacts, utcnow
from provenance.errors import BadInput
from provenance.ingest.analyze import DEFAULT_MAX_BYTES, analyze_location
from provenance.ingest.keys import host_bucket, sighting_key, url_parts
from provenance.ingest.readers import (
    MANIFEST_EXTS,
    SightingInput,
    file_input,
    folder_entries,
    manifest_inputs,
    tar_inputs,
)
from provenance.services.catalog import open_catalog
from provenance.services.optout import apply_standing_optouts

BYTES_BATCH = 512  # images hashed per window (one transaction each)
ROWS_BATCH = 20_000  # URL-only manifest rows per transaction
MAX_BAD_ITEMS_LISTED = 1000

Progress = Callable[[int], None]


@dataclass(frozen=True)
class IngestOptions:
    sources: Sequence[Path]
    source_name: str | None = None
    license: str | None = None
    workers: int = 0  # 0: one per core
    max_bytes: int = DEFAULT_MAX_BYTES
    partition: tuple[int, int] | None = None
    embedded_signals: bool = True


@dataclass
class IngestSummary:
    run_id: int = 0
    images_new: int = 0
    sightings_new: int = 0
    duplicates: int = 0
    pending_fetch: int = 0
    bad: int = 0
    bad_items: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "images_new": self.images_new,
            "sightings_new": self.sightings_new,
            "duplicates": self.duplicates,
            "pending_fetch": self.pending_fetch,
            "bad": self.bad,
            "bad_items": self.bad_items,
        }


@dataclass(frozen=True)
class Unit:
    """One input file and the source name its sightings are recorded under."""

    path: Path
    kind: str  # image | tar | manifest
    source_name: str


def plan_units(options: IngestOptions) -> list[Unit]:
    """Validate every SOURCE before anything is written; expand folders; sort by path."""
    units: list[Unit] = []
    for source in options.sources:
        if not source.exists():
            raise BadInput(f"{source}: no such file or folder")
        name = options.source_name or source.resolve().stem or source.resolve().name
        if source.is_dir():
            for entry in folder_entries(source):
                kind = "tar" if entry.suffix.lower() == ".tar" else "image"
                units.append(Unit(entry.resolve(), kind, name))
        elif source.suffix.lower() in MANIFEST_EXTS:
            units.append(Unit(source.resolve(), "manifest", name))
        elif source.suffix.lower() == ".tar":
            units.append(Unit(source.resolve(), "tar", name))
        else:
            if not os.access(source, os.R_OK):
                raise BadInput(f"{source}: not readable")
            units.append(Unit(source.resolve(), "image", name))
    units.sort(key=lambda u: (str(u.path), u.source_name))
    unique = list(dict.fromkeys(units))
    if options.partition:
        index, count = options.partition
        unique = [u for k, u in enumerate(unique) if k % count == index]
    return unique


def _inputs(unit: Unit, max_bytes: int) -> Iterator[SightingInput]:
    if unit.kind == "image":
        yield file_input(unit.path)
    elif unit.kind == "tar":
        yield from tar_inputs(unit.path, max_bytes)
    else:
        yield from manifest_inputs(unit.path)


class _Analyzer:
    """Hashes windows of inputs, in a process pool when there is more than one worker."""

    def __init__(self, workers: int, max_bytes: int, embedded: bool) -> None:
        self.max_bytes = max_bytes
        self.embedded = embedded
        self.pool: Any = None
        if workers > 1:
            ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            self.pool = ctx.Pool(workers)

    def jobs(
        self, items: Sequence[SightingInput]
    ) -> list[tuple[str, int | None, int | None, int, bool]]:
        return [
            (str(i.local_path), i.local_offset, i.local_length, self.max_bytes, self.embedded)
            for i in items
            if i.has_bytes
        ]

    def submit(self, items: Sequence[SightingInput]) -> Any:
        jobs = self.jobs(items)
        if self.pool is None:
            return [analyze_location(job) for job in jobs]
        return self.pool.map_async(analyze_location, jobs, chunksize=8)

    @staticmethod
    def collect(handle: Any) -> list[ImageFacts | str]:
        return list(handle if isinstance(handle, list) else handle.get())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _license(raw: str | None) -> str | None:
    if not raw:
        return None
    from provenance.licenses import normalize_license

    return normalize_license(raw).spdx_id


class _Writer:
    """Turns analyzed inputs into catalog rows, one transaction per window."""

    def __init__(self, engine: Engine, run_id: int, default_license: str | None) -> None:
        self.engine = engine
        self.run_id = run_id
        self.default_license = default_license
        self.summary = IngestSummary(run_id=run_id)
        self.seen_images: set[str] = set()

    def _bad(self, item: SightingInput, reason: str) -> None:
        self.summary.bad += 1
        if len(self.summary.bad_items) < MAX_BAD_ITEMS_LISTED:
            self.summary.bad_items.append({"origin": item.origin, "reason": reason})

    def _row(
        self, unit: Unit, item: SightingInput, facts: ImageFacts | None, now: Any
    ) -> dict[str, Any]:
        license_raw = item.license_raw or self.default_license
        image_sha = facts.sha256 if facts is not None and facts.format is not None else None
        status, error = "ok", item.error
        if error is None and facts is not None and not facts.decode_ok:
            error = facts.error
        if error is not None:
            status = "bad"
        elif facts is None:
            status = "pending"
        host = domain = None
        bucket = None
        if item.url:
            parts = url_parts(item.url)
            if isinstance(parts, str):
                if facts is None and error is None:
                    status, error = "bad", parts
                else:
                    item.extra["url_error"] = parts
            else:
                _scheme, host, domain = parts
                bucket = host_bucket(host)
        if status == "bad":
            self._bad(item, error or "bad item")
        key_sha = facts.sha256 if facts is not None else None
        key = (
            sighting_key(unit.source_name, item.origin_kind, item.origin, key_sha)
            if item.origin_kind != "manifest-row"
            else sighting_key(
                unit.source_name,
                item.origin_kind,
                item.url,
                item.caption,
                license_raw,
                item.creator,
                item.title,
                item.claimed_sha256,
                key_sha,
                None if item.url else item.origin,
            )
        )
        return {
            "sighting_key": key,
            "image_sha256": image_sha,
            "status": status,
            "error": error,
            "url": item.url,
            "host": host,
            "domain": domain,
            "host_bucket": bucket,
            "source_name": unit.source_name,
            "origin_kind": item.origin_kind,
            "origin": item.origin,
            "license_raw": license_raw,
            "license_spdx": _license(license_raw),
            "creator": item.creator,
            "title": item.title,
            "caption": item.caption,
            "tags": json.dumps(item.tags) if item.tags else None,
            "claimed_sha256": item.claimed_sha256,
            "extra": json.dumps(item.extra, sort_keys=True, default=str) if item.extra else None,
            "local_path": item.local_path if facts is not None else None,
            "local_offset": item.local_offset if facts is not None else None,
            "local_length": item.local_length if facts is not None else None,
            "run_id": self.run_id,
            "seen_at": now,
            "fetched_at": None,
        }

    def write(
        self,
        conn: Connection,
        unit: Unit,
        items: Sequence[SightingInput],
        results: Sequence[ImageFacts | str],
    ) -> None:
        """Write one window inside the caller's transaction."""
        now = utcnow()
        analyzed = iter(results)
        pairs: list[tuple[SightingInput, ImageFacts | None]] = []
        for item in items:
            facts: ImageFacts | None = None
            if item.has_bytes:
                result = next(analyzed)
                if isinstance(result, str):
                    item.error = result
                else:
                    facts = result
            pairs.append((item, facts))
        image_facts = [f for _, f in pairs if f is not None]
        new_images = db.record_images(conn, image_facts, self.run_id, now)
        by_status: dict[str, list[dict[str, Any]]] = {"ok": [], "pending": [], "bad": []}
        for item, facts in pairs:
            row = self._row(unit, item, facts, now)
            by_status[row["status"]].append(row)
        # Inserted per status so the driver's count of new rows says what kind they were.
        new_ok = db.insert_sightings(conn, by_status["ok"])
        new_pending = db.insert_sightings(conn, by_status["pending"])
        db.insert_sightings(conn, by_status["bad"])
        # Every active opt-out applies to what this window added (the standing rules).
        if any_active_request(conn):
            new_keys = [r["sighting_key"] for r in by_status["ok"] + by_status["pending"]]
            apply_standing_optouts(
                conn,
                image_shas=sorted(new_images),
                sighting_ids=db.sighting_ids(conn, new_keys),
                now=now,
            )
        self.summary.images_new += len(new_images)
        self.summary.sightings_new += new_ok + new_pending
        self.summary.pending_fetch += new_pending
        for facts in image_facts:
            if facts.format is None:
                continue
            if facts.sha256 not in new_images or facts.sha256 in self.seen_images:
                self.summary.duplicates += 1
            self.seen_images.add(facts.sha256)


def _windows(items: Iterator[SightingInput]) -> Iterator[list[SightingInput]]:
    """Windows of inputs: small ones when they carry bytes to hash, large ones for URL rows."""
    window: list[SightingInput] = []
    with_bytes = 0
    for item in items:
        window.append(item)
        with_bytes += item.has_bytes
        if with_bytes >= BYTES_BATCH or len(window) >= ROWS_BATCH:
            yield window
            window, with_bytes = [], 0
    if window:
        yield window


def run_ingest(
    settings: Settings,
    options: IngestOptions,
    progress: Progress | None = None,
    command: str | None = None,
) -> IngestSummary:
    """Ingest every source; returns the summary. Raises BadInput for unparseable manifests."""
    units = plan_units(options)
    engine = open_catalog(settings)
    workers = options.workers or os.cpu_count() or 1
    now = utcnow()
    partition = f"{options.partition[0]}/{options.partition[1]}" if options.partition else None
    with engine.begin() as conn:
        run_id = db.start_run(
            conn,
            "ingest",
            now,
            command=command,
            sources=[str(s) for s in options.sources],
            source_name=options.source_name,
            partition=partition,
        )
    writer = _Writer(engine, run_id, options.license)
    analyzer = _Analyzer(workers, options.max_bytes, options.embedded_signals)
    status = "failed"
    try:
        for unit in units:
            _ingest_unit(unit, options, analyzer, writer, progress)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        analyzer.close()
        with engine.begin() as conn:
            db.finish_run(conn, run_id, utcnow(), status, writer.summary.to_json())
        engine.dispose()
    return writer.summary


def _ingest_unit(
    unit: Unit,
    options: IngestOptions,
    analyzer: _Analyzer,
    writer: _Writer,
    progress: Progress | None,
) -> None:
    """Double-buffered: the pool hashes window k+1 while window k is written.

    A manifest is one transaction (a parse error halfway leaves nothing of it behind); images
    and tar shards commit per window, which is safe because every write is idempotent."""
    unit_tx: AbstractContextManager[Connection | None] = (
        writer.engine.begin() if unit.kind == "manifest" else nullcontext(None)
    )
    with unit_tx as shared:

        def flush(items: list[SightingInput], handle: Any) -> None:
            results = analyzer.collect(handle)
            if shared is not None:
                writer.write(shared, unit, items, results)
            else:
                with writer.engine.begin() as conn:
                    writer.write(conn, unit, items, results)
            if progress:
                progress(len(items))

        pending: tuple[list[SightingInput], Any] | None = None
        for window in _windows(_inputs(unit, options.max_bytes)):
            handle = analyzer.submit(window)
            if pending is not None:
                flush(*pending)
            pending = (window, handle)
        if pending is not None:
            flush(*pending)
