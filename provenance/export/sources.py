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
        try:
            with open(self.path, "rb", buffering=0) as fh:
                if self.offset is None:
                    return fh.read()
                fh.seek(self.offset)
                return fh.read(self.length or 0)
        except OSError:
            return None


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


def prefetch_verified(
    jobs: Iterable[tuple[str, Sequence[ByteLocation]]], *, window: int = 64
) -> Iterator[tuple[str, bytes | None]]:
    """`read_verified` over `jobs` on a reader thread, yielded in input order.

    At most `window` samples wait in memory, so reading and hashing the next images overlaps
    with the caller writing the previous ones (file reads and sha256 release the GIL).
    """
    results: queue.Queue[tuple[str, bytes | None] | BaseException | None] = queue.Queue(window)
    stop = threading.Event()

    def read_all() -> None:
        try:
            for sha, locs in jobs:
                if stop.is_set():
                    return
                results.put((sha, read_verified(sha, locs)))
            results.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            results.put(exc)

    reader = threading.Thread(target=read_all, name="export-read", daemon=True)
    reader.start()
    try:
        while (item := results.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        reader.join()
