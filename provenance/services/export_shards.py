"""Writing one planned shard, and the files that describe a finished export.

Shared by `export` and `exports rewrite`: a shard is a list of keys in order; its bytes come
from the catalog's facts (sample JSON, caption) and the verified image bytes. Each committed
shard is recorded in its own transaction.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from provenance.db import export_queries as q
from provenance.domain import iso, utcnow
from provenance.errors import EnvironmentProblem
from provenance.export.attribution import attribution_csv, attribution_markdown
from provenance.export.croissant import CroissantShard, croissant_document, croissant_json
from provenance.export.manifest import (
    SampleRecord,
    SampleSource,
    SignalSummary,
    extension_for,
    sample_json,
)
from provenance.export.sources import ByteLocation, locations_for
from provenance.export.writer import DurableShard, ShardFile, ShardWriter
from provenance.store import ContentStore

Progress = Callable[[int], None]
_PROGRESS_EVERY = 64  # samples per progress report


@dataclass(frozen=True)
class ShardJob:
    """One shard to write: its global index, file name and keys in order."""

    index: int
    file_name: str
    keys: Sequence[str]


def shard_file_name(name: str, index: int) -> str:
    return f"{name}-{index:06d}.tar"


def sample_records(
    engine: Engine,
    keys: Sequence[str],
    sightings: dict[str, list[q.SightingFacts]] | None = None,
    *,
    with_signals: bool = True,
) -> dict[str, SampleRecord]:
    """Everything the per-sample JSON says, for `keys`, in a few batched queries
    (`sightings`, when the caller already read them for these keys, are not read again;
    `with_signals=False` leaves out the signal summaries, for credits and formats only)."""
    with engine.connect() as conn:
        images = q.image_rows(conn, keys)
        if sightings is None:
            sightings = q.sightings_of(conn, keys)
        urls = {s.url for rows in sightings.values() for s in rows if s.url}
        hosts = {s.host for rows in sightings.values() for s in rows if s.host}
        signals = q.latest_signals(conn, keys, urls, hosts) if with_signals else {}
    by_subject: dict[str, list[SignalSummary]] = {}
    for (scope, subject, kind), stored in sorted(signals.items()):
        sig = stored.signal
        by_subject.setdefault(f"{scope}:{subject}", []).append(
            SignalSummary(
                str(scope),
                subject,
                str(kind),
                str(sig.status),
                stored.observed_at,
                sig.source,
                sig.detail or None,
            )
        )
    records: dict[str, SampleRecord] = {}
    for key in keys:
        rows = sightings.get(key, [])
        linked = {f"url:{s.url}" for s in rows if s.url}
        linked |= {f"host:{s.host}" for s in rows if s.host}
        subjects = [f"image:{key}", *sorted(linked)]
        image = images.get(key)
        records[key] = SampleRecord(
            key=key,
            image_format=image.format if image else None,
            byte_size=image.byte_size if image else 0,
            sources=[
                SampleSource(
                    s.url,
                    s.source_name,
                    s.license_raw,
                    s.license_spdx,
                    s.creator,
                    s.title,
                    s.caption,
                )
                for s in rows
            ],
            signals=[sig for subject in subjects for sig in by_subject.get(subject, [])],
        )
    return records


def byte_locations(
    engine: Engine, store: ContentStore, keys: Sequence[str]
) -> dict[str, list[ByteLocation]]:
    """Candidate byte locations per key: content store first, then local sightings."""
    with engine.connect() as conn:
        sightings = q.sightings_of(conn, keys)
    return locations_from(store, keys, sightings)


def locations_from(
    store: ContentStore, keys: Sequence[str], sightings: dict[str, list[q.SightingFacts]]
) -> dict[str, list[ByteLocation]]:
    """`byte_locations` from sightings already read."""
    objects = os.path.join(str(store.objects), "")  # with the separator at its end

    def store_path(sha: str) -> str:
        # ContentStore.path_for's layout, as plain strings: pathlib (even os.path.join) costs
        # more than the read of a small image on this hot path (a test checks both agree).
        return f"{objects}{sha[:2]}{os.sep}{sha[2:4]}{os.sep}{sha}"

    found: dict[str, list[ByteLocation]] = {}
    for key in keys:
        local = [
            ByteLocation(s.local_path, s.local_offset, s.local_length)
            for s in sightings.get(key, [])
            if s.local_path
        ]
        found[key] = locations_for(key, store_path, local)
    return found


def write_shard(
    engine: Engine,
    store: ContentStore,
    out_dir: Path,
    job: ShardJob,
    policy: tuple[str, str],
    progress: Progress | None = None,
    expect_sha256: str | None = None,
    *,
    background: bool = True,
) -> DurableShard:
    """Write one shard, durable under its temporary name (the caller publishes it, then
    records it in the catalog).

    `expect_sha256` is the recorded hash when a committed shard is written again (its file
    was lost): different bytes raise DeterminismError and nothing is replaced. `background`
    writes and hashes the shard file on a second thread.
    """
    with engine.connect() as conn:
        sightings = q.sightings_of(conn, job.keys)
    locations = locations_from(store, job.keys, sightings)
    records = sample_records(engine, job.keys, sightings)
    with ShardWriter(out_dir / job.file_name, background=background) as writer:
        for done, key in enumerate(job.keys, 1):
            record = records[key]
            image = f"{key}.{extension_for(record.image_format)}"
            if not writer.add_verified(image, key, record.byte_size, locations[key]):
                # Planning saw the bytes; they changed or vanished since. Writing the shard
                # without the sample would silently shift every later shard.
                raise EnvironmentProblem(
                    f"the bytes of image {key} are no longer readable with that sha256 (the "
                    "content store or the local file changed during the export); restore them, "
                    "or start a new export into another --out"
                )
            writer.add(f"{key}.json", sample_json(record, *policy))
            if record.caption:
                writer.add(f"{key}.txt", record.caption.encode())
            if progress is not None and (done % _PROGRESS_EVERY == 0 or done == len(job.keys)):
                progress(done % _PROGRESS_EVERY or _PROGRESS_EVERY)
        return writer.finish(expect_sha256)


def shard_row(job: ShardJob, shard: ShardFile) -> q.ShardRow:
    """The catalog's record of a published shard."""
    return q.ShardRow(job.index, job.file_name, len(job.keys), shard.bytes, shard.sha256,
                      utcnow())


def shard_on_disk_matches(out_dir: Path, row: q.ShardRow) -> bool:
    """A committed shard is still there with its recorded size (cheap: one stat)."""
    try:
        return (out_dir / row.path).stat().st_size == row.bytes
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> str:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)
    return hashlib.sha256(data).hexdigest()


def write_descriptions(
    engine: Engine,
    out_dir: Path,
    export: q.ExportRow,
    shards: Sequence[q.ShardRow],
    keys: Sequence[str],
) -> dict[str, str]:
    """ATTRIBUTION.md, ATTRIBUTION.csv and croissant.json; returns {file name: sha256}."""
    credits = []
    exts: set[str] = set()
    licenses: set[str] = set()
    for start in range(0, len(keys), 2000):
        records = sample_records(engine, keys[start : start + 2000], with_signals=False)
        for key in keys[start : start + 2000]:
            record = records[key]
            credit = record.credit()
            exts.add(extension_for(record.image_format))
            licenses.add(credit.license_url or credit.license_label)
            if credit.required:
                credits.append(credit)
    doc = croissant_document(
        export.name,
        f"Images exported under policy {export.policy_name!r} "
        f"(sha256 {export.policy_sha256}); provenance per sample in <key>.json.",
        [CroissantShard(s.path, s.sha256, s.bytes) for s in shards],
        sorted(exts),
        sorted(licenses),
        iso(export.created_at),
    )
    return {
        "ATTRIBUTION.md": _write_atomic(
            out_dir / "ATTRIBUTION.md", attribution_markdown(export.name, credits).encode()
        ),
        "ATTRIBUTION.csv": _write_atomic(
            out_dir / "ATTRIBUTION.csv", attribution_csv(credits).encode()
        ),
        "croissant.json": _write_atomic(out_dir / "croissant.json", croissant_json(doc)),
    }


def write_manifest(out_dir: Path, data: bytes) -> str:
    """manifest.json, atomically: its presence means every shard is committed."""
    return _write_atomic(out_dir / "manifest.json", data)
