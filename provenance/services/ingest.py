"""The ingest use case: sources -> sighting inputs -> hashed in a process pool -> batched writes.

Units of work are input files (an image, a tar shard, a manifest), taken in path order; with
`--partition I/N` unit k belongs to partition k mod N. Each batch is one transaction and every
write is keyed naturally (sha256, sighting key), so an interrupted run re-runs to the same state.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from provenance.config import Settings
from provenance.db import catalog as db
from provenance.domain import utcnow
from provenance.errors import BadInput
from provenance.eventlog import append_event
from provenance.ingest.analyze import DEFAULT_MAX_BYTES
from provenance.ingest.background import (
    CHILD_MIN_BYTES,
    UrlManifestJob,
    prepare_in_child,
    prepare_inline,
)
from provenance.ingest.readers import (
    MANIFEST_EXTS,
    SightingInput,
    file_input,
    folder_entries,
    manifest_inputs,
    open_parquet,
    parquet_row_groups,
    tar_inputs,
)
from provenance.ingest.rows import PreparedWindow
from provenance.ingest.textranges import ByteRange, split_ranges
from provenance.services.catalog import open_catalog
from provenance.services.ingest_stages import (
    Analyzer,
    Committer,
    IngestSummary,
    Progress,
    Writer,
    fewer_gc_passes,
)

BYTES_BATCH = 512  # images hashed per window (one transaction each)
ROWS_BATCH = 20_000  # URL-only manifest rows per transaction

@dataclass(frozen=True)
class IngestOptions:
    sources: Sequence[Path]
    source_name: str | None = None
    license: str | None = None
    workers: int = 0  # 0: one per core
    max_bytes: int = DEFAULT_MAX_BYTES
    partition: tuple[int, int] | None = None
    embedded_signals: bool = True


@dataclass(frozen=True)
class Unit:
    """One input file and the source name its sightings are recorded under."""

    path: Path
    kind: str  # image | tar | manifest
    source_name: str
    row_group: int | None = None  # one Parquet row group of a manifest split for partitions
    part: ByteRange | None = None  # one byte range of a CSV/JSONL manifest split for partitions


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
        # A manifest is split too, so one huge manifest spreads over the partitions: Parquet by
        # row groups, CSV/JSONL into N byte ranges. The units (files, and their parts in file
        # order) in path order, unit k in partition k mod N. The rows written do not depend on
        # N (content-derived keys, row numbers counted over the whole file).
        index, count = options.partition
        unique = [part for unit in unique for part in _manifest_parts(unit, count)]
        unique = [u for k, u in enumerate(unique) if k % count == index]
    return unique


def _manifest_parts(unit: Unit, partitions: int) -> list[Unit]:
    """A manifest's units in a run of `partitions` partitions. Text manifests are cut into one
    byte range per partition, not more: a range finds its first row number by reading the
    file up to its start (a CSV range parses it), so more ranges per partition would read the
    prefix again for each, and the reading would grow with the square of the file's size."""
    if unit.kind != "manifest":
        return [unit]
    if unit.path.suffix.lower() == ".parquet":
        groups = parquet_row_groups(unit.path)
        return [replace(unit, row_group=g) for g in range(groups)] or [unit]
    return [replace(unit, part=part)
            for part in split_ranges(unit.path.stat().st_size, partitions)]


def _inputs(unit: Unit, max_bytes: int) -> Iterator[SightingInput]:
    if unit.kind == "image":
        yield file_input(unit.path)
    elif unit.kind == "tar":
        yield from tar_inputs(unit.path, max_bytes)
    else:
        yield from manifest_inputs(unit.path, unit.row_group, unit.part)


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
    writer = Writer(engine, run_id, options.license)
    analyzer = Analyzer(workers, options.max_bytes, options.embedded_signals)
    status = "failed"
    try:
        with fewer_gc_passes():
            for group in unit_groups(units):
                _ingest_unit(group, options, analyzer, writer, progress)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        analyzer.close()
        with engine.begin() as conn:
            db.finish_run(conn, run_id, utcnow(), status, writer.summary.to_json())
            counts = {k: v for k, v in writer.summary.to_json().items() if k != "bad_items"}
            append_event(
                conn,
                "ingest",
                {
                    **counts,
                    "status": status,
                    "partition": partition,
                    "sources": [str(s) for s in options.sources],
                },
                utcnow(),
            )
        engine.dispose()
    return writer.summary


def unit_groups(units: Sequence[Unit]) -> Iterator[list[Unit]]:
    """Consecutive single-image units of one source name travel together, so the process pool
    hashes windows of many files at once; a tar shard or a manifest is a group of its own."""
    group: list[Unit] = []
    for unit in units:
        if group and (
            unit.kind != "image"
            or group[0].kind != "image"
            or unit.source_name != group[0].source_name
        ):
            yield group
            group = []
        group.append(unit)
    if group:
        yield group


def _ingest_unit(
    units: list[Unit],
    options: IngestOptions,
    analyzer: Analyzer,
    writer: Writer,
    progress: Progress | None,
) -> None:
    """A three-stage pipeline: the pool hashes window k+2, this thread prepares rows of window
    k+1, and a committer thread writes window k. Hashing overlaps everything; preparing and
    writing overlap little in practice (both need the GIL; measured for URL manifests, their
    costs add up), so the committer mainly keeps database waits off the hashing path.

    A manifest is one transaction (a parse error halfway leaves nothing of it behind); images
    and tar shards commit per window, which is safe because every write is idempotent."""
    unit = units[0]
    windows = _url_windows(unit, options, writer) if unit.kind == "manifest" else None
    if windows is None:
        analyzer.start()
    # Started after any child process is forked: a fork copies only the forking thread.
    committer = Committer(writer, whole_unit=unit.kind == "manifest", progress=progress,
                           incoming_rows=_estimated_rows(unit) if windows is not None else 0)
    committer.start()
    try:
        if windows is not None:  # URL-only Parquet/CSV rows: the columnar path
            for window in windows:
                committer.put(window)
        else:
            _item_windows(units, options, analyzer, writer, committer)
        # Inside the try: Ctrl-C while the last windows are written still rolls them back
        # (unless the committer is already committing, which then completes).
        committer.finish()
    except BaseException:
        committer.abort()
        raise
    finally:
        if windows is not None:
            windows.close()  # stops a child process still preparing rows


def _url_windows(
    unit: Unit, options: IngestOptions, writer: Writer
) -> Generator[PreparedWindow, None, None] | None:
    """Prepared windows of a URL-only manifest (None for other manifests): in a child process
    when there is a second worker and the manifest is large enough to repay starting one."""
    job = UrlManifestJob(unit.path, unit.row_group, unit.part, unit.source_name, writer.run_id,
                         writer.default_license, ROWS_BATCH)
    workers = options.workers or os.cpu_count() or 1
    size = unit.part.end - unit.part.start if unit.part else unit.path.stat().st_size
    if workers > 1 and size >= CHILD_MIN_BYTES:
        return prepare_in_child(job)
    return prepare_inline(job)


def _estimated_rows(unit: Unit) -> int:
    """About how many rows a manifest unit holds: exact for Parquet, from the size otherwise
    (LAION-style CSV rows are 100-300 bytes). Only decides whether a load rebuilds indexes."""
    if unit.path.suffix.lower() == ".parquet":
        meta = open_parquet(unit.path).metadata
        if unit.row_group is not None:
            return int(meta.row_group(unit.row_group).num_rows)
        return int(meta.num_rows)
    size = unit.part.end - unit.part.start if unit.part else unit.path.stat().st_size
    return size // 128


def _item_windows(
    units: list[Unit],
    options: IngestOptions,
    analyzer: Analyzer,
    writer: Writer,
    committer: Committer,
) -> None:
    source_name = units[0].source_name  # one source name for the whole group
    inputs = itertools.chain.from_iterable(_inputs(u, options.max_bytes) for u in units)
    pending: tuple[list[SightingInput], Any] | None = None
    for window in _windows(inputs):
        handle = analyzer.submit(window)
        if pending is not None:
            committer.put(writer.prepare(source_name, pending[0], analyzer.collect(pending[1])))
        pending = (window, handle)
    if pending is not None:
        committer.put(writer.prepare(source_name, pending[0], analyzer.collect(pending[1])))


