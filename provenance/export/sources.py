"""Where an image's bytes come from at export time, verified by their sha256.

Candidates in order: the content store (bytes fetched or ingested and kept), then every
sighting that recorded a local copy: a whole file (`local_path`) or a member of a tar
(`local_path` + `local_offset` + `local_length`). Bytes are used only if their sha256 is the
image's key; anything else is skipped, so a file edited after ingest is never exported under a
key it no longer has.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
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

    def read_into(self, view: memoryview) -> int | None:
        """Fill `view` from the start of the bytes (at most `length` bytes of a range); returns
        how many were read (fewer at the end of the bytes), or None when unreadable. Reading
        into the caller's buffer spares allocating and copying each image."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _O_CLOEXEC)
        except OSError:
            return None
        try:
            if self.offset is not None:
                os.lseek(fd, self.offset, os.SEEK_SET)
                view = view[: self.length or 0]
            return _read_full(fd, view)
        except OSError:
            return None
        finally:
            os.close(fd)


def _read_full(fd: int, view: memoryview) -> int:
    """Read until `view` is full or the file ends (a read may return less than asked)."""
    done = 0
    while done < len(view):
        step = os.readv(fd, [view[done:]])
        if step == 0:
            break
        done += step
    return done


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
        if data is not None and hashlib.sha256(data).hexdigest() == sha256:
            return data
    return None


def read_verified_into(
    sha256: str, size: int, locations: Sequence[ByteLocation], view: memoryview
) -> bool:
    """Put the first candidate's bytes whose sha256 is `sha256` in `view[:size]`, where `size`
    is the catalog's size of the image; False if no candidate has them as `size` bytes.

    `view` must hold `size + 1` bytes: the extra one tells a file that grew since from the
    image. A candidate of another length is skipped as its hash would be (read_verified still
    finds the bytes should the catalog's size ever be wrong).
    """
    if len(view) <= size:
        raise ValueError(f"read_verified_into needs {size + 1} bytes of room, not {len(view)}")
    digest = bytes.fromhex(sha256)
    image = view[:size]
    for loc in locations:
        if loc.read_into(view[: size + 1]) == size and hashlib.sha256(image).digest() == digest:
            return True
    return False
