"""Deterministic WebDataset tar shards: the same members in the same order give the same bytes.

Every header is fixed except name and size: POSIX ustar format (no pax records, so no access or
change times), mode 0644, uid/gid 0, empty user and group names, and one fixed mtime. The
archive ends with the two zero blocks and is padded to a 10240-byte record, as GNU tar and
Python's tarfile do, so every tar reader accepts it.

A shard is written under a temporary name in the same directory, hashed while it is written,
fsynced, and only then renamed to its final name: a reader never sees half a shard under a
shard's name.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from provenance.errors import DeterminismError

# 2000-01-01T00:00:00Z: fixed so that shards do not depend on when they were written; not the
# epoch itself, which some tar implementations warn about as "implausibly old".
FIXED_MTIME = 946_684_800
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_ZERO_BLOCKS = b"\0" * (2 * BLOCK)
_BUFFER = 1 << 20


@dataclass(frozen=True)
class ShardFile:
    """A finished shard on disk."""

    path: Path
    bytes: int
    sha256: str


def member_header(name: str, size: int) -> bytes:
    """The 512-byte ustar header of a regular file member with the fixed metadata."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


def temp_path_for(final: Path) -> Path:
    """Where a shard is written before it is renamed: hidden, and unique per process so that a
    retried task running beside a live one never writes into the same file."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


class ShardWriter:
    """Writes one tar shard: `add` members in order, then `commit` (or `abort`).

    Use as a context manager; leaving the block without `commit` removes the temporary file.
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.temp = temp_path_for(final)
        self._fh = open(self.temp, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed in commit/abort
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def _write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self._size += len(data)

    def add(self, name: str, data: bytes | memoryview) -> None:
        """Append one member with `data` as its content."""
        self._write(member_header(name, len(data)))
        self._write(data)
        remainder = len(data) % BLOCK
        if remainder:
            self._write(b"\0" * (BLOCK - remainder))

    def commit(self, expect_sha256: str | None = None) -> ShardFile:
        """Finish the archive, make it durable and rename it to its final name.

        With `expect_sha256` (the hash recorded when this shard was first committed), bytes
        that differ are a determinism bug: the new file is dropped, the old one is left alone
        and DeterminismError is raised.
        """
        self._write(_ZERO_BLOCKS)
        remainder = self._size % RECORD
        if remainder:
            self._write(b"\0" * (RECORD - remainder))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        digest = self._hash.hexdigest()
        if expect_sha256 is not None and digest != expect_sha256:
            self.temp.unlink(missing_ok=True)
            self._done = True
            raise DeterminismError(
                f"{self.final.name} was committed with sha256 {expect_sha256}, but writing it "
                f"again gave {digest}; this is a determinism bug (please report it). The "
                "catalog's record of the committed shard is kept"
            )
        os.replace(self.temp, self.final)
        self._done = True
        return ShardFile(self.final, self._size, digest)

    def abort(self) -> None:
        """Drop the temporary file (idempotent)."""
        if self._done:
            return
        self._fh.close()
        self.temp.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


def file_sha256(path: Path) -> str:
    """sha256 of a whole file, read in large blocks."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(_BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


def plan_shards(
    sizes: list[int], shard_size: int | None, shard_bytes: int | None
) -> list[tuple[int, int]]:
    """Shard boundaries `[start, end)` over samples in their global order.

    A shard closes when it holds `shard_size` samples, or when adding the next image would
    take its image bytes past `shard_bytes` (a shard always takes at least one sample, so an
    image larger than the limit gets a shard of its own). Boundaries depend only on the sorted
    list of included sizes, never on partitioning or on who writes the shard.
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    used = 0
    for i, size in enumerate(sizes):
        count = i - start
        full = shard_size is not None and count >= shard_size
        over = shard_bytes is not None and count > 0 and used + size > shard_bytes
        if full or over:
            bounds.append((start, i))
            start, used = i, 0
        used += size
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds
