"""The stages of an ingest unit's pipeline: hashing in a process pool, preparing rows, and the
committer thread that writes prepared windows in order. `services.ingest` wires them together."""

from __future__ import annotations

import gc
import multiprocessing
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from provenance.db import catalog as db
from provenance.db.optout_queries import any_active_request
from provenance.domain import ImageFacts, utcnow
from provenance.ingest.analyze import analyze_location
from provenance.ingest.readers import SightingInput
from provenance.ingest.rows import PreparedWindow, prepare_window
from provenance.services.optout import apply_standing_optouts

MAX_BAD_ITEMS_LISTED = 1000

Progress = Callable[[int], None]


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


class Analyzer:
    """Hashes windows of inputs, in a process pool when there is more than one worker. The
    pool is started by the first unit that has bytes to hash (a run of URL manifests never
    starts one), before that unit's committer thread: a fork copies only the forking thread."""

    def __init__(self, workers: int, max_bytes: int, embedded: bool) -> None:
        self.workers = workers
        self.max_bytes = max_bytes
        self.embedded = embedded
        self.pool: Any = None

    def start(self) -> None:
        if self.pool is None and self.workers > 1:
            ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            self.pool = ctx.Pool(self.workers)

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


class Writer:
    """Commits prepared windows and keeps the run's counts."""

    def __init__(self, engine: Engine, run_id: int, default_license: str | None) -> None:
        self.engine = engine
        self.run_id = run_id
        self.default_license = default_license
        self.summary = IngestSummary(run_id=run_id)
        self.seen_images: set[str] = set()

    def prepare(
        self,
        source_name: str,
        items: Sequence[SightingInput],
        results: Sequence[ImageFacts | str],
    ) -> PreparedWindow:
        """The rows of one window: pure Python, no database (runs beside the committer)."""
        return prepare_window(
            source_name, items, results, self.run_id, utcnow(), self.default_license
        )

    def commit(self, conn: Connection, window: PreparedWindow) -> None:
        """Write one prepared window inside the caller's transaction."""
        new_images = db.record_images(conn, window.image_facts, self.run_id, window.now)
        # Inserted per status so the driver's count of new rows says what kind they were.
        new_ok = db.insert_sightings(conn, window.rows["ok"])
        new_pending = db.insert_sightings(conn, window.rows["pending"])
        new_pending += db.insert_sighting_columns(
            conn, window.pending_columns, window.pending_shared
        )
        db.insert_sightings(conn, window.rows["bad"])
        # Every active opt-out applies to what this window added (the standing rules).
        if any_active_request(conn):
            apply_standing_optouts(
                conn,
                image_shas=sorted(new_images),
                sighting_ids=db.sighting_ids(conn, window.new_keys()),
                now=window.now,
            )
        summary = self.summary
        summary.images_new += len(new_images)
        summary.sightings_new += new_ok + new_pending
        summary.pending_fetch += new_pending
        summary.bad += len(window.bad)
        room = MAX_BAD_ITEMS_LISTED - len(summary.bad_items)
        summary.bad_items.extend(window.bad[: max(room, 0)])
        for facts in window.image_facts:
            if facts.format is None:
                continue
            if facts.sha256 not in new_images or facts.sha256 in self.seen_images:
                summary.duplicates += 1
            self.seen_images.add(facts.sha256)


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often while rows stream through: every window
    allocates tens of thousands of tuples and lists that live until it is written, and with
    the default threshold (700) the collector kept re-scanning them (measured: building a
    window's parameter tuples 1.2 us a row, 0.23 with this threshold). Cycles are still
    collected, just in larger, rarer passes; the previous thresholds come back afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], 200_000), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class Committer(threading.Thread):
    """Writes prepared windows in order; re-raises its error in the caller on finish()."""

    _DONE = object()
    _ABORT = object()

    def __init__(
        self,
        writer: Writer,
        *,
        whole_unit: bool,
        progress: Progress | None,
        incoming_rows: int = 0,
    ) -> None:
        super().__init__(name="provenance-ingest-commit", daemon=True)
        self.writer = writer
        self.whole_unit = whole_unit
        self.incoming_rows = incoming_rows
        self.progress = progress
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def put(self, window: PreparedWindow) -> None:
        while self.is_alive():
            try:
                self.queue.put(window, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise()

    def abort(self) -> None:
        self._drain()
        self.queue.put(self._ABORT)
        self.join()

    def finish(self) -> None:
        if self.is_alive():
            self.queue.put(self._DONE)
        self.join()
        self._raise()

    def _drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            if self.whole_unit:
                with self.writer.engine.begin() as conn:
                    # Standing opt-outs query sightings by domain after every window: they
                    # need the indexes that a bulk load would drop.
                    rows = 0 if any_active_request(conn) else self.incoming_rows
                    with db.sighting_bulk_load(conn, rows):
                        self._loop(conn)
            else:
                self._loop(None)
        except BaseException as exc:  # handed to the producing thread by finish()/put()
            self.error = exc

    def _loop(self, shared: Connection | None) -> None:
        while True:
            item = self.queue.get()
            if item is self._DONE:
                return
            if item is self._ABORT:
                raise _Aborted()
            if shared is not None:
                self.writer.commit(shared, item)
            else:
                with self.writer.engine.begin() as conn:
                    self.writer.commit(conn, item)
            if self.progress:
                self.progress(item.size)


class _Aborted(Exception):
    """Raised inside the committer's transaction so that it rolls back."""
