"""Where an image's bytes come from at export time, verified by their sha256.

Candidates in order: the content store (bytes fetched or ingested and kept), then every
sighting that recorded a local copy: a whole file (`local_path`) or a member of a tar
(`local_path` + `local_offset` + `local_length`). Bytes are used only if their sha256 is the
image's key; anything else is skipped, so a file edited after ingest is never exported under a
key it no longer has.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ByteLocation:
    """A place that may hold an image's bytes: a whole file, or `length` bytes at `offset`."""

    path: str
    offset: int | None = None
    length: int | None = None

    def looks_available(self, size: int) -> bool:
        """Cheap check (one stat): the file exists and is large enough to hold `size` bytes
        where we expect them. Planning uses this; reading verifies the hash."""
        try:
            actual = os.stat(self.path).st_size
        except OSError:
            return False
        if self.offset is None:
            return actual == size
        return self.length == size and actual >= self.offset + size

    def read(self) -> bytes | None:
        """The bytes, or None when the file is gone or unreadable."""
        # os-level calls: a Python file object costs more than reading a small image.
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_CLOEXEC)
        except OSError:
            return None
        try:
            if self.offset is None:
                return _read_to_end(fd, os.fstat(fd).st_size)
            return os.pread(fd, self.length or 0, self.offset)
        except OSError:
            return None
        finally:
            os.close(fd)


def _read_to_end(fd: int, size: int) -> bytes:
    """All bytes from the start of `fd`; `size` (from fstat) is a hint, so a file that grew or
    shrank since is still read whole (the hash check then decides)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def locations_for(
    sha256: str, store_path: Callable[[str], str] | None, sightings: Iterable[ByteLocation]
) -> list[ByteLocation]:
    """Candidate locations in the order they are tried: content store first, then sightings
    (deduplicated, in the given order)."""
    found: list[ByteLocation] = []
    if store_path is not None:
        found.append(ByteLocation(store_path(sha256)))
    for loc in sightings:
        if loc not in found:
            found.append(loc)
    return found


def first_available(locations: Sequence[ByteLocation], size: int) -> bool:
    """Whether any location passes the cheap availability check."""
    return any(loc.looks_available(size) for loc in locations)


def read_verified(sha256: str, locations: Sequence[ByteLocation]) -> bytes | None:
    """The first candidate's bytes whose sha256 is `sha256`, or None if none has them."""
    for loc in locations:
        data = loc.read()
        # hashlib releases the GIL on large buffers: the reader thread hashes in parallel.
        if data is not None and hashlib.sha256(data).hexdigest() == sha256:
            return data
    return None


_HANDOFF = 8  # samples per handoff to the consumer: fewer lock round trips per byte


class Prefetch:
    """`read_verified` over `jobs` on a reader thread, yielded in input order.

    The thread starts at once, so the caller can do other work (catalog queries) while the
    first images are read and hashed. At most `window` samples wait in memory; they are handed
    over a few at a time, so the two threads meet once per batch, not once per sample. Use as
    a context manager (or iterate to the end) so that the thread always stops.
    """

    def __init__(
        self, jobs: Iterable[tuple[str, Sequence[ByteLocation]]], *, window: int = 64
    ) -> None:
        self._batch = max(1, min(_HANDOFF, window // 4))
        self._results: queue.Queue[list[tuple[str, bytes | None]] | BaseException | None] = (
            queue.Queue(max(1, window // self._batch - 1))
        )
        self._stop = threading.Event()
        self._reader = threading.Thread(
            target=self._read_all, args=(jobs,), name="export-read", daemon=True
        )
        self._reader.start()

    def _read_all(self, jobs: Iterable[tuple[str, Sequence[ByteLocation]]]) -> None:
        try:
            batch: list[tuple[str, bytes | None]] = []
            for sha, locs in jobs:
                if self._stop.is_set():
                    return
                batch.append((sha, read_verified(sha, locs)))
                if len(batch) >= self._batch:
                    self._results.put(batch)
                    batch = []
            if batch:
                self._results.put(batch)
            self._results.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._results.put(exc)

    def __iter__(self) -> Iterator[tuple[str, bytes | None]]:
        try:
            while (item := self._results.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield from item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the reader thread and wait for it (idempotent)."""
        self._stop.set()
        while self._reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self._results.get(timeout=0.05)
        self._reader.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prefetch_verified(
    jobs: Iterable[tuple[str, Sequence[ByteLocation]]], *, window: int = 64
) -> Prefetch:
    """Start reading and verifying `jobs` on a reader thread; see Prefetch."""
    return Prefetch(jobs, window=window)
