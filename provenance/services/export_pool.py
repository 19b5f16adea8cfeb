"""Writing a slice's shards, several at once in forked processes when there are cores for it.

Writing a shard is bound by sha256 (every image is checked against its key, and the shard's
own hash is computed) and by Python per sample; threads of one interpreter share its lock, so
shards written side by side in separate processes are what puts every core to work. Workers
are forked: they inherit the engine (and open their own connections), the store and the
policy, and receive only each job. A worker leaves its shard durable under a temporary name;
the caller publishes and records the shards in shard order, so what is visible and recorded
is always a prefix of the slice, exactly as when one process writes them one after another.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from sqlalchemy import Engine

from provenance.db.engine import release_for_fork
from provenance.errors import EnvironmentProblem
from provenance.export.writer import DurableShard, temp_path_for
from provenance.services.export_shards import Progress, ShardJob, write_shard
from provenance.store import ContentStore

_POLL_SECONDS = 0.25  # how often progress from the workers is passed on


@dataclass(frozen=True)
class SliceContext:
    """What every shard of a slice is written with."""

    engine: Engine
    store: ContentStore
    out_dir: Path
    policy: tuple[str, str]  # name and sha256, as the sample JSON states them


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(shards: int, cpus: int) -> int:
    """Processes for `shards` shards: one per shard up to `cpus`; one off Linux (workers
    inherit the engine, which only fork hands over, and fork is only safe to rely on there)."""
    if shards < 2 or cpus < 2 or not sys.platform.startswith("linux"):
        return 1
    return min(shards, cpus)


def durable_shards(
    ctx: SliceContext,
    jobs: Sequence[ShardJob],
    expected: Mapping[int, str],
    progress: Progress | None,
) -> Iterator[tuple[ShardJob, DurableShard]]:
    """Each job's shard, durable under its temporary name, in job order. `expected` holds the
    recorded sha256 of shards written before (a rewrite must give the same bytes).

    Shards this generator made but the caller did not take (an error, or the caller stopped)
    are discarded; the caller publishes each one it takes before asking for the next.
    """
    cpus = usable_cpus()
    workers = worker_count(len(jobs), cpus)
    if workers > 1 and not release_for_fork(ctx.engine):
        workers = 1  # a connection is in use: the children would inherit it
    # A writer thread per shard helps while cores are left over; with every core writing a
    # shard of its own, it would only add switching.
    background = cpus >= 2 * workers
    if workers == 1:
        for job in jobs:
            shard = write_shard(ctx.engine, ctx.store, ctx.out_dir, job, ctx.policy, progress,
                                expected.get(job.index), background=background)
            try:
                yield job, shard
            finally:
                shard.discard()  # a no-op once published: the temporary name is gone
        return
    yield from _pooled(ctx, jobs, expected, progress, workers, background)


def _pooled(
    ctx: SliceContext,
    jobs: Sequence[ShardJob],
    expected: Mapping[int, str],
    progress: Progress | None,
    workers: int,
    background: bool,
) -> Iterator[tuple[ShardJob, DurableShard]]:
    fork = multiprocessing.get_context("fork")
    done: Synchronized[int] = fork.Value("q", 0)  # samples written, summed over workers
    pool = ProcessPoolExecutor(workers, mp_context=fork, initializer=_start_worker,
                               initargs=(ctx, done))
    futures = [pool.submit(_write_in_worker, job, expected.get(job.index), background)
               for job in jobs]
    taken = 0
    reported = 0
    try:
        for job, future in zip(jobs, futures, strict=True):
            while not future.done():
                wait([future], timeout=_POLL_SECONDS)
                reported = _pass_on(done, reported, progress)
            try:
                shard = future.result()
            except BrokenProcessPool as exc:
                raise EnvironmentProblem(
                    f"a shard-writing process ended abruptly while writing {job.file_name} "
                    "(killed, or out of memory); run the export again to continue it") from exc
            taken += 1
            try:
                yield job, shard
            finally:
                shard.discard()  # a no-op once published: the temporary name is gone
        _pass_on(done, reported, progress)
    finally:
        _discard_rest(futures[taken:])
        pool.shutdown(wait=True, cancel_futures=True)


def _pass_on(done: Synchronized[int], reported: int, progress: Progress | None) -> int:
    """Report the samples the workers finished since the last call; returns the new total."""
    now = done.value
    if progress is not None and now > reported:
        progress(now - reported)
    return now


def _discard_rest(futures: Sequence[Future[DurableShard]]) -> None:
    """Stop the shards not started, wait for those being written and drop them: nothing the
    caller did not publish stays behind (a failed one already removed its file)."""
    for future in futures:
        if not future.cancel() and future.exception() is None:
            future.result().discard()


# State of a worker process, set once by the pool's initializer (fork: not pickled).
_WORKER: dict[str, object] = {}
_TEMPS: list[Path] = []  # temporary shard files this worker made


def _start_worker(ctx: SliceContext, done: Synchronized[int]) -> None:
    # The parent's pooled connections stay the parent's; this process opens its own.
    ctx.engine.dispose(close=False)
    _WORKER["ctx"] = ctx
    _WORKER["done"] = done
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch",
                     daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this worker soon after its parent dies (killed, or the crash drill): nobody would
    publish its shards, and a worker waiting for jobs would otherwise wait forever."""
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    for temp in _TEMPS:
        temp.unlink(missing_ok=True)  # published ones are gone from here already
    os._exit(1)


def _write_in_worker(job: ShardJob, expect: str | None, background: bool) -> DurableShard:
    ctx = _WORKER["ctx"]
    done = _WORKER["done"]
    assert isinstance(ctx, SliceContext) and isinstance(done, Synchronized)
    _TEMPS.append(temp_path_for(ctx.out_dir / job.file_name))

    def count(samples: int) -> None:
        with done.get_lock():
            done.value += samples

    return write_shard(ctx.engine, ctx.store, ctx.out_dir, job, ctx.policy, count, expect,
                       background=background)
