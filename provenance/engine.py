"""The one Ray adapter: run the N slices of a heavy command as Ray core tasks.

Each task calls the very service function that `--partition I/N` calls, with its own catalog
connection; the driver waits on all of them behind one progress callback and hands the
per-partition results back in partition order, for the command to merge. Ray is borrowed, not
required: it is imported only here and only when `--engine ray` is asked for.

Retries: Ray re-runs a task whose worker died (`max_retries`), and re-runs it on the transient
error classes below only; every other failure (bad input, a determinism error) fails the run
at once, with the task's own exception re-raised in the driver so exit codes stay the same.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from provenance.errors import BadInput, ProvenanceError

ENGINES = ("local", "ray")
ENGINE_ENV = "PROVENANCE_ENGINE"
MAX_RETRIES = 3
# Transient: a dropped or refused catalog connection, a network hiccup. Not retried: anything
# that would fail the same way again (our own errors, programming errors).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)
# Fault injection for the retry tests: "I:MARKER" makes partition I's task die abruptly (as on
# a lost worker) on its first attempt; the marker file records that it already did.
CRASH_ENV = "PROVENANCE_TEST_CRASH_PARTITION"

T = TypeVar("T")
PartitionFn = Callable[[tuple[int, int]], T]


@dataclass(frozen=True)
class EngineChoice:
    """How to run a heavy command: `local` (one process, maybe one slice) or `ray`."""

    name: str = "local"
    partitions: int = 1
    address: str | None = None

    @property
    def distributed(self) -> bool:
        return self.name == "ray"


def choose_engine(
    name: str | None,
    partitions: int | None,
    address: str | None,
    partition: tuple[int, int] | None,
) -> EngineChoice:
    """Validate the engine flags (flag, then env PROVENANCE_ENGINE, then `local`)."""
    chosen = (name or os.environ.get(ENGINE_ENV) or "local").strip().lower()
    if chosen not in ENGINES:
        raise BadInput(f"--engine must be one of {', '.join(ENGINES)} (got {chosen!r})")
    if partitions is not None and partitions < 1:
        raise BadInput(f"--partitions must be at least 1 (got {partitions})")
    if chosen == "local":
        if partitions not in (None, 1) or address:
            raise BadInput("--partitions/--engine-address need --engine ray "
                           "(or use --partition I/N to run one slice)")
        return EngineChoice()
    if partition is not None:
        raise BadInput("--partition I/N runs one slice; with --engine ray use --partitions N")
    return EngineChoice("ray", partitions or _default_partitions(), address)


def _default_partitions() -> int:
    return os.cpu_count() or 1


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadInput(
            "--engine ray needs Ray: pip install 'provenance[ray]'"
        ) from None
    return ray


def _ensure_ray(ray: Any, address: str | None) -> None:
    """Join the given cluster (or RAY_ADDRESS), or start a local Ray with this machine's
    cores; a Ray already initialised in this process (tests, notebooks) is reused."""
    if ray.is_initialized():
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    ray.init(address=target, include_dashboard=False, log_to_driver=True)


def _crash_once(index: int, spec: str | None) -> None:
    if not spec:
        return
    wanted, _, marker = spec.partition(":")
    if wanted != str(index) or not marker or Path(marker).exists():
        return
    Path(marker).write_text(f"partition {index} crashed once\n")
    os._exit(137)


def _task(fn: PartitionFn[T], index: int, count: int, crash: str | None) -> T:
    """What runs on a worker: slice `index` of `count`, through the service function."""
    _crash_once(index, crash)
    return fn((index, count))


def run_partitions(
    choice: EngineChoice,
    fn: PartitionFn[T],
    on_done: Callable[[int, int], None] | None = None,
) -> list[T]:
    """Run fn((i, N)) for every i as Ray tasks; results in partition order. `on_done(done,
    total)` is called as partitions finish (one progress bar over all of them)."""
    ray = _import_ray()
    _ensure_ray(ray, choice.address)
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES,
                        retry_exceptions=list(TRANSIENT_ERRORS))(_task)
    crash = os.environ.get(CRASH_ENV)
    count = choice.partitions
    refs = [remote.remote(fn, i, count, crash) for i in range(count)]
    position = {ref: i for i, ref in enumerate(refs)}
    results: dict[int, T] = {}
    pending: list[Any] = list(refs)
    # Ray reports lost workers and task logs by printing; stdout is for the one --json document.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    results[position[ref]] = _get(ray, ref)
                if on_done is not None:
                    on_done(len(results), count)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return [results[i] for i in range(count)]


def _get(ray: Any, ref: Any) -> Any:
    """The task's result; its own project error re-raised as itself (same message, same exit
    code), anything else as the Ray error that says where it happened."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, ProvenanceError):
            raise cause from None
        raise
