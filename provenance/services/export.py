"""The export gate: plan which permitted images go into which shard, write the shards of this
partition, and, once every shard is committed, the describing files and `manifest.json`.

Phases, each safe to interrupt:
1. Plan (once per export): the policy over the whole catalog (sorted keys), a cheap
   availability check of every included image's bytes (missing -> `missing-bytes`), and the
   shard boundaries from the sorted sizes. Stored as `export_members` with the export row in
   one transaction. Boundaries depend only on the catalog and the policy, never on N.
2. Shards: `--partition I/N` writes the shards whose first key's 16-bit bucket belongs to
   partition I (the sha256-range contract of every heavy command). Each shard is written under
   a temporary name, renamed, then recorded in `export_shards` in its own transaction; a
   recorded shard that is still on disk is never written again.
3. Finish (whoever commits the last shard, or any re-run): ATTRIBUTION.md/.csv and
   croissant.json, then manifest.json last, then status 'complete'. No manifest and status
   'writing' means unfinished; a re-run with the same --out (or --resume) continues it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from provenance.config import Settings
from provenance.db import export_queries as q
from provenance.db.engine import transaction
from provenance.domain import utcnow
from provenance.errors import BadInput, EnvironmentProblem
from provenance.export.plan import plan_shards
from provenance.export.sources import first_available
from provenance.ingest.keys import partition_of_bucket
from provenance.policy import Policy, load_policy
from provenance.services.catalog import open_catalog
from provenance.services.export_finish import ExportResult, ShardInfo, finish_export
from provenance.services.export_pool import SliceContext, durable_shards
from provenance.services.export_shards import (
    ShardJob,
    byte_locations,
    shard_file_name,
    shard_on_disk_matches,
    shard_row,
)
from provenance.services.policy import decide_keys, evaluate_catalog
from provenance.store import ContentStore

DEFAULT_SHARD_SIZE = 10_000
MISSING_BYTES = "missing-bytes"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
_BATCH = 2000
# Fault injection for the interruption tests (and batch-system retry drills): the process dies
# abruptly, as under SIGKILL, right after committing this many shards.
CRASH_AFTER_ENV = "PROVENANCE_EXPORT_CRASH_AFTER_SHARDS"


class ProgressSink(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, count: int) -> None: ...


@dataclass(frozen=True)
class ExportOptions:
    policy_path: Path
    out_dir: Path
    name: str = "shard"
    shard_size: int | None = None
    shard_bytes: int | None = None
    dry_run: bool = False
    resume: bool = False
    partition: tuple[int, int] | None = None
    # False in the tasks of a distributed export: the driver writes the manifest last.
    finish: bool = True
    # True in those tasks when the driver planned the export just now: nothing can have been
    # revoked since, so the per-key re-check of a continued export is skipped.
    just_planned: bool = False

    def validated(self) -> ExportOptions:
        """Check names and sizes before anything is written; default the shard size."""
        if not _NAME.fullmatch(self.name):
            raise BadInput(f"--name {self.name!r}: use letters, digits, '.', '_' or '-'")
        for flag, value in (("--shard-size", self.shard_size), ("--shard-bytes", self.shard_bytes)):
            if value is not None and value < 1:
                raise BadInput(f"{flag} must be at least 1, not {value}")
        if self.shard_size is None and self.shard_bytes is None:
            return dataclasses.replace(self, shard_size=DEFAULT_SHARD_SIZE)
        return self


@dataclass(frozen=True)
class ExportPlan:
    keys: list[str]
    sizes: list[int]
    bounds: list[tuple[int, int]]
    excluded: dict[str, int] = field(default_factory=dict)

    def members(self) -> list[q.MemberRow]:
        return [
            q.MemberRow(self.keys[i], shard, i - start)
            for shard, (start, end) in enumerate(self.bounds)
            for i in range(start, end)
        ]


def plan_keys(
    engine: Engine,
    store: ContentStore,
    included: Sequence[str],
    excluded: dict[str, int],
    shard_size: int | None,
    shard_bytes: int | None,
) -> ExportPlan:
    """Keep the sorted `included` keys whose bytes look available (the rest count as
    `missing-bytes`) and cut them into shards."""
    keys: list[str] = []
    sizes: list[int] = []
    missing = 0
    for start in range(0, len(included), _BATCH):
        batch = included[start : start + _BATCH]
        with engine.connect() as conn:
            images = q.image_rows(conn, batch)
        locations = byte_locations(engine, store, batch)
        for key in batch:
            image = images.get(key)
            if image is not None and first_available(locations[key], image.byte_size):
                keys.append(key)
                sizes.append(image.byte_size)
            else:
                missing += 1
    counts = dict(excluded)
    if missing:
        counts[MISSING_BYTES] = counts.get(MISSING_BYTES, 0) + missing
    return ExportPlan(keys, sizes, plan_shards(sizes, shard_size, shard_bytes), counts)


def compute_plan(
    engine: Engine,
    store: ContentStore,
    policy: Policy,
    now: datetime,
    shard_size: int | None,
    shard_bytes: int | None,
) -> ExportPlan:
    """Phase 1 without writing: permitted keys with bytes available, and shard boundaries."""
    evaluation = evaluate_catalog(engine, policy, now)
    return plan_keys(
        engine, store, evaluation.included, evaluation.excluded, shard_size, shard_bytes
    )


@contextmanager
def dir_lock(out_dir: Path) -> Iterator[None]:
    """One process at a time plans or finishes an export in this directory (same machine)."""
    with open(out_dir / ".provenance-export.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def create_planned_export(engine: Engine, values: dict[str, Any], plan: ExportPlan) -> int:
    """Insert the export row (status 'writing') and its plan in one transaction."""
    with transaction(engine) as conn:
        q.lock_out_dir(conn, values["out_dir"])
        again = q.latest_export_in(conn, values["out_dir"], values["name"])
        if again is not None and again.status == "writing":
            return again.id  # another partition planned it meanwhile (same inputs, same plan)
        export_id = q.create_export(conn, values)
        q.record_plan(
            conn, export_id, plan.members(), len(plan.keys), plan.excluded, sum(plan.sizes)
        )
    return export_id


def _open_export(
    engine: Engine, store: ContentStore, policy: Policy, opts: ExportOptions, now: datetime
) -> tuple[q.ExportRow, bool]:
    """The export to continue in --out, or a newly planned one. Returns (row, resumed)."""
    out = str(opts.out_dir)
    with engine.connect() as conn:
        existing = q.latest_export_in(conn, out, opts.name)
    if existing is not None:
        if existing.policy_sha256 != policy.sha256:
            raise BadInput(
                f"{out} already holds export {existing.id} made with policy "
                f"{existing.policy_name!r} (sha256 {existing.policy_sha256[:12]}...); "
                "use another --out for a different policy"
            )
        if (existing.shard_size, existing.shard_bytes) != (opts.shard_size, opts.shard_bytes):
            raise BadInput(
                f"{out} holds export {existing.id} with --shard-size {existing.shard_size} "
                f"and --shard-bytes {existing.shard_bytes}; re-run with the same values"
            )
        return existing, True
    if opts.resume:
        raise BadInput(f"--resume: no export named {opts.name!r} to continue in {out}")
    plan = compute_plan(engine, store, policy, now, opts.shard_size, opts.shard_bytes)
    values = {
        "name": opts.name,
        "status": "writing",
        "out_dir": out,
        "policy_name": policy.name,
        "policy_sha256": policy.sha256,
        "policy_text": policy.text,
        "shard_size": opts.shard_size,
        "shard_bytes": opts.shard_bytes,
        "created_at": now,
    }
    export_id = create_planned_export(engine, values, plan)
    with engine.connect() as conn:
        return q.get_export(conn, export_id), False


def shard_jobs(
    members: Sequence[q.MemberRow], name: str, partition: tuple[int, int] | None
) -> list[ShardJob]:
    """The planned shards (all, or those of one partition), in index order."""
    by_shard: dict[int, list[str]] = {}
    for m in members:
        by_shard.setdefault(m.shard_index, []).append(m.image_sha256)
    jobs = [ShardJob(i, shard_file_name(name, i), keys) for i, keys in sorted(by_shard.items())]
    if partition is None:
        return jobs
    index, count = partition
    return [j for j in jobs if partition_of_bucket(int(j.keys[0][:4], 16), count) == index]


def refuse_revoked(
    engine: Engine, policy: Policy, keys: Sequence[str], now: datetime, export_id: int
) -> None:
    """Before finishing an export planned earlier: every key still to be written must still
    be permitted (an opt-out may have arrived since). Otherwise stop; never write it."""
    decisions = decide_keys(engine, policy, keys, now)
    revoked = sorted(k for k in keys if k not in decisions or not decisions[k].include)
    if revoked:
        raise EnvironmentProblem(
            f"export {export_id}: {len(revoked)} planned image(s) are no longer permitted "
            f"(e.g. {revoked[0]}); the unfinished export cannot be completed as planned. "
            "Export into a new --out instead"
        )


def write_slice(
    engine: Engine,
    store: ContentStore,
    export: q.ExportRow,
    jobs: Sequence[ShardJob],
    policy: Policy,
    check_revoked: bool,
    progress: ProgressSink | None,
) -> int:
    """Write the jobs' shards that are not committed (or whose file is gone). Returns how many
    shards this call wrote."""
    out_dir = Path(export.out_dir)
    with engine.connect() as conn:
        committed = q.shards_of(conn, export.id)
    todo = [
        j
        for j in jobs
        if j.index not in committed or not shard_on_disk_matches(out_dir, committed[j.index])
    ]
    if progress is not None:
        progress.start(sum(len(j.keys) for j in jobs))
        progress.advance(sum(len(j.keys) for j in jobs if j not in todo))
    if check_revoked and todo:
        refuse_revoked(engine, policy, [k for j in todo for k in j.keys], utcnow(), export.id)
    ctx = SliceContext(engine, store, out_dir, (policy.name, policy.sha256))
    expected = {j.index: committed[j.index].sha256 for j in todo if j.index in committed}
    shards = durable_shards(ctx, todo, expected, progress.advance if progress else None)
    for written, (job, shard) in enumerate(shards, 1):
        row = shard_row(job, shard.publish())
        with transaction(engine) as conn:
            q.record_shard(conn, export.id, row)
        if os.environ.get(CRASH_AFTER_ENV) == str(written):
            os._exit(137)
    return len(todo)


def run_export(
    settings: Settings, opts: ExportOptions, progress: ProgressSink | None = None
) -> ExportResult:
    """`provenance export`: plan (or continue) an export and write this partition's shards."""
    opts = opts.validated()
    policy = load_policy(opts.policy_path)
    engine = open_catalog(settings)
    store = ContentStore(settings.store_dir)
    now = utcnow()
    try:
        if opts.dry_run:
            return dry_run(engine, store, policy, opts, now)
        opts = _with_out_dir(opts)
        with dir_lock(opts.out_dir):
            export, resumed = _open_export(engine, store, policy, opts, now)
        with engine.connect() as conn:
            members = q.members_of(conn, export.id)
        jobs = shard_jobs(members, export.name, opts.partition)
        check = resumed and not opts.just_planned
        written = write_slice(engine, store, export, jobs, policy, check, progress)
        if not opts.finish:
            return ExportResult(export.id, export.out_dir, [], 0, {}, export.status, written)
        with dir_lock(opts.out_dir):
            return finish_export(engine, export.id, members, written)
    finally:
        engine.dispose()


def _with_out_dir(opts: ExportOptions) -> ExportOptions:
    """The options with --out resolved and created."""
    out_dir = opts.out_dir.resolve()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create --out {out_dir}: {exc.strerror or exc}") from exc
    return dataclasses.replace(opts, out_dir=out_dir, dry_run=False)


def prepare_export(settings: Settings, opts: ExportOptions) -> ExportOptions:
    """The count phase alone (plan, global shard numbering, export row), as the driver of a
    distributed export runs it before any shard is written. Returns the options the
    partitions then run with; continuing an export already planned in --out is a no-op."""
    opts = _with_out_dir(opts.validated())
    policy = load_policy(opts.policy_path)
    engine = open_catalog(settings)
    try:
        with dir_lock(opts.out_dir):
            _, resumed = _open_export(engine, ContentStore(settings.store_dir), policy, opts,
                                      utcnow())
    finally:
        engine.dispose()
    return dataclasses.replace(opts, just_planned=not resumed)


def dry_run(
    engine: Engine, store: ContentStore, policy: Policy, opts: ExportOptions, now: datetime
) -> ExportResult:
    """What an export would write, computed without writing anything."""
    plan = compute_plan(engine, store, policy, now, opts.shard_size, opts.shard_bytes)
    shards = [
        ShardInfo(
            str(opts.out_dir / shard_file_name(opts.name, i)),
            end - start,
            None,
            sum(plan.sizes[start:end]),
        )
        for i, (start, end) in enumerate(plan.bounds)
    ]
    return ExportResult(None, str(opts.out_dir), shards, len(plan.keys), plan.excluded, "dry-run")
