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

import errno
import hashlib
import os
import queue
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from provenance.errors import DeterminismError, EnvironmentProblem

# 2000-01-01T00:00:00Z: fixed so that shards do not depend on when they were written; not the
# epoch itself, which some tar implementations warn about as "implausibly old".
FIXED_MTIME = 946_684_800
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_ZERO_BLOCKS = b"\0" * (2 * BLOCK)
_ZEROS = bytes(BLOCK)
_IOV_MAX = 512  # well under every platform's limit on buffers per writev
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BATCH_BYTES = 1 << 20  # hand buffers to the writer thread about 1 MiB at a time
_QUEUE_BATCHES = 16  # at most ~16 MiB waiting to be written


@dataclass(frozen=True)
class ShardFile:
    """A finished shard on disk."""

    path: Path
    bytes: int
    sha256: str


def _tarfile_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


# Bytes 100..148 (mode, uid, gid) and 136..148 (mtime) never change; only name, size and the
# checksum do. Building the header from this template is ~10x cheaper than TarInfo.tobuf and
# gives the same bytes (a test compares them).
_FIXED_MODE_IDS = b"0000644\x000000000\x000000000\x00"
_FIXED_MTIME_FIELD = b"%011o\x00" % FIXED_MTIME
_MAGIC = b"ustar\x0000"
_MAX_USTAR_SIZE = 8**11 - 1


def _fixed_header_fields() -> bytes:
    """Bytes 100..512 of every header with the size zeroed and the checksum as spaces."""
    buf = bytearray(BLOCK - 100)
    buf[0:24] = _FIXED_MODE_IDS
    buf[36:48] = _FIXED_MTIME_FIELD
    buf[48:56] = b"        "
    buf[56:57] = tarfile.REGTYPE
    buf[157:165] = _MAGIC
    return bytes(buf)


_FIXED_FIELDS = _fixed_header_fields()
_FIXED_SUM = sum(_FIXED_FIELDS)
_AFTER_CHECKSUM = _FIXED_FIELDS[56:]


def member_header(name: str, size: int) -> bytes:
    """The 512-byte ustar header of a regular file member with the fixed metadata."""
    raw = name.encode("utf-8")
    if len(raw) > 100 or size > _MAX_USTAR_SIZE:
        return _tarfile_header(name, size)  # prefix split or a clear error, as tarfile does
    size_field = b"%011o\x00" % size
    # The checksum is the byte sum of the header with spaces in its own field: the fixed
    # fields' share is summed once, at import, so only name and size are summed per member.
    checksum = _FIXED_SUM + sum(raw) + sum(size_field)
    return b"".join((
        raw,
        bytes(100 - len(raw)),
        _FIXED_MODE_IDS,
        size_field,
        _FIXED_MTIME_FIELD,
        b"%06o\x00 " % checksum,
        _AFTER_CHECKSUM,
    ))


def temp_path_for(final: Path) -> Path:
    """Where a shard is written before it is renamed: hidden, and unique per process so that a
    retried task running beside a live one never writes into the same file."""
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Write all of `parts` in order: one writev in the usual case; after a short write (a
    signal, a full disk) the rest is written until done, so the file holds every byte or an
    OSError is raised."""
    written = os.writev(fd, parts) if len(parts) <= _IOV_MAX else 0
    if written == sum(map(len, parts)):
        return
    rest = memoryview(b"".join(parts))[written:]
    while rest:
        step = os.write(fd, rest)
        if step == 0:
            raise OSError(errno.EIO, "the shard file accepted no bytes")
        rest = rest[step:]


class _HashingSink:
    """Writes buffers to a file and hashes them on a background thread. Both file writes and
    sha256 updates of large buffers release the GIL, so building the next members overlaps
    with writing and hashing the previous ones."""

    def __init__(self, path: Path) -> None:
        # A raw descriptor and writev: each batch goes to the kernel in one call, without
        # first being copied into a userspace buffer.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o666)
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (parts := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks on a full queue
            try:
                _write_all(self._fd, parts)
            except OSError as exc:
                self._error = exc
                continue
            for part in parts:
                self._hash.update(part)

    def put(self, parts: list[bytes]) -> None:
        self._raise_error()
        self._queue.put(parts)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise EnvironmentProblem(
                f"cannot write shard: {self._error.strerror or self._error}") from self._error

    def close(self, durable: bool) -> str:
        """Stop the thread, flush (and fsync when `durable`), close; returns the sha256."""
        self._queue.put(None)
        self._thread.join()
        try:
            if durable and self._error is None:
                os.fsync(self._fd)
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)
        self._raise_error()
        return self._hash.hexdigest()


class ShardWriter:
    """Writes one tar shard: `add` members in order, then `commit` (or `abort`).

    Use as a context manager; leaving the block without `commit` removes the temporary file.
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.temp = temp_path_for(final)
        self._sink = _HashingSink(self.temp)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size = 0
        self._done = False

    def _write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self._size += len(data)
        if self._pending_bytes >= _BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._sink.put(self._pending)
            self._pending, self._pending_bytes = [], 0

    def add(self, name: str, data: bytes) -> None:
        """Append one member with `data` as its content."""
        self._write(member_header(name, len(data)))
        self._write(data)
        remainder = len(data) % BLOCK
        if remainder:
            self._write(_ZEROS[: BLOCK - remainder])

    def commit(self, expect_sha256: str | None = None) -> ShardFile:
        """Finish the archive, make it durable and rename it to its final name.

        With `expect_sha256` (the hash recorded when this shard was first committed), bytes
        that differ are a determinism bug: the new file is dropped, the old one is left alone
        and DeterminismError is raised.
        """
        self._write(_ZERO_BLOCKS)
        remainder = self._size % RECORD
        if remainder:
            self._write(bytes(RECORD - remainder))
        self._flush()
        self._done = True
        try:
            digest = self._sink.close(durable=True)
        except EnvironmentProblem:
            self.temp.unlink(missing_ok=True)
            raise
        if expect_sha256 is not None and digest != expect_sha256:
            self.temp.unlink(missing_ok=True)
            raise DeterminismError(
                f"{self.final.name} was committed with sha256 {expect_sha256}, but writing it "
                f"again gave {digest}; this is a determinism bug (please report it). The "
                "catalog's record of the committed shard is kept"
            )
        os.replace(self.temp, self.final)
        return ShardFile(self.final, self._size, digest)

    def abort(self) -> None:
        """Drop the temporary file (idempotent)."""
        if self._done:
            return
        self._done = True
        try:
            self._sink.close(durable=False)
        except EnvironmentProblem:
            pass  # the write error that got us here was already raised
        finally:
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


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
