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

import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import queue
import sys
import tarfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from provenance.errors import DeterminismError, EnvironmentProblem
from provenance.export.sources import ByteLocation, read_verified, read_verified_into

# 2000-01-01T00:00:00Z: fixed so that shards do not depend on when they were written; not the
# epoch itself, which some tar implementations warn about as "implausibly old".
FIXED_MTIME = 946_684_800
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
_ZEROS = bytes(RECORD)  # the longest padding: to the end of a record
_ZERO_VIEW = memoryview(_ZEROS)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Staging buffers: large enough that a write and a hash update each cover dozens of samples,
# few enough that a writer holds ~24 MiB.
_STAGING = 8 << 20
_BUFFERS = 3
# Data at least this large goes to the file from its own buffer, uncopied (buffered I/O only:
# direct I/O writes only from the aligned staging buffers).
_UNSTAGED = 1 << 20
# Measured on ext4 (Linux 6.18): one write of 8 MiB costs ~4x the kernel CPU of the same bytes
# in 64-128 KiB writes (page cache folios sized to the write); tmpfs does not care.
_WRITE_BYTES = 128 << 10
_FADVISE = hasattr(os, "posix_fadvise") and sys.platform.startswith("linux")
# Direct I/O (Linux): staged buffers go from our memory to the disk by DMA, skipping the page
# cache: no copy into it, no writeback by the kernel's flusher threads later and little left
# for the fsync. On this machine's ext4 it cuts the kernel's CPU per shard byte to a fraction,
# and the disk (about 1.2 GB/s here) works while the next buffer is filled. Writes must start
# and end on ALIGN boundaries from page-aligned memory: staging buffers are anonymous maps, and
# a buffer's unaligned tail moves on to the next one; only the shard's last bytes are written
# through the page cache. Where a file system refuses it, writing goes on buffered.
_O_DIRECT = getattr(os, "O_DIRECT", 0) if sys.platform.startswith("linux") else 0
ALIGN = 4096


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


def _padded(size: int) -> int:
    """A member's data size rounded up to whole blocks."""
    return -(-size // BLOCK) * BLOCK


def _write_all(fd: int, data: memoryview, chunk: int = _WRITE_BYTES) -> None:
    """Write all of `data`, in writes of at most `chunk` bytes; after a short write (a signal, a
    full disk) the rest follows, so the file holds every byte or OSError is raised."""
    while data:
        step = os.write(fd, data[:chunk])
        if step == 0:
            raise OSError(errno.EIO, "the shard file accepted no bytes")
        data = data[step:]


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing these bytes to disk now, without waiting: the disk then
    works while the next buffers are filled, and the fsync at the end has little left to do.
    On Linux, POSIX_FADV_DONTNEED starts writeback of dirty pages (and drops none of them);
    PostgreSQL uses it the same way where sync_file_range is missing. Only advice: where it
    is unsupported the fsync does all the work, as it would anyway."""
    if _FADVISE:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


Buffer = bytearray | mmap.mmap


class _Sink:
    """Writes finished buffers to the shard file and adds them to its sha256.

    In the background (a thread: file writes and sha256 of large buffers release the GIL, so
    the next buffer is filled meanwhile), or inline when every core already writes a shard of
    its own and a thread would only add switching. With direct I/O the thread is always used:
    a direct write waits for the disk, and the caller goes on filling buffers meanwhile.
    Staging buffers come from a small pool and go back to it once written, so memory stays
    bounded and is reused, never reallocated.

    `direct` is set when the file takes direct I/O: every buffer but the last must then be
    handed over in whole ALIGN blocks (ShardWriter carries the rest over).
    """

    def __init__(self, path: Path, background: bool, buffer_bytes: int, direct: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC
        self.direct = False
        if direct and _O_DIRECT:
            try:  # a raw descriptor: buffers go to the kernel uncopied in userspace
                self._fd = os.open(path, flags | _O_DIRECT, 0o666)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # the file system does not do direct I/O
                    raise
        if not self.direct:
            self._fd = os.open(path, flags, 0o666)
        background = background or self.direct
        self._hash = hashlib.sha256()
        self._written = 0
        self._error: OSError | None = None
        self._free: queue.SimpleQueue[Buffer] = queue.SimpleQueue()
        for _ in range(_BUFFERS if background else 1):
            # Anonymous maps are page-aligned, as direct I/O needs.
            self._free.put(mmap.mmap(-1, buffer_bytes) if self.direct else bytearray(buffer_bytes))
        self._queue: queue.Queue[tuple[bytes | Buffer, int, bool] | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=_BUFFERS)
            self._thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)
            self._thread.start()

    def buffer(self) -> Buffer:
        """A free staging buffer (waits for the thread to hand one back)."""
        return self._free.get()

    def put(self, data: bytes | Buffer, length: int, recycle: bool) -> None:
        """Write `data[:length]` next; `recycle` returns `data` to the buffer pool after."""
        self._raise_error()
        if self._queue is None:
            self._consume(data, length, recycle)
        else:
            self._queue.put((data, length, recycle))

    def _run(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            self._consume(*item)

    def _consume(self, data: bytes | Buffer, length: int, recycle: bool) -> None:
        # After an error the remaining buffers are only handed back, so the producer never
        # waits for one; the error is raised on its next put or at close.
        if self._error is None:
            view = memoryview(data)[:length]
            try:
                self._hash.update(view)
                self._write(view)
            except OSError as exc:
                self._error = exc
            self._written += length
        if recycle:
            assert not isinstance(data, bytes)
            self._free.put(data)

    def _write(self, view: memoryview) -> None:
        if not self.direct:
            _write_all(self._fd, view)
            _start_writeback(self._fd, self._written, len(view))
            return
        whole = len(view) - len(view) % ALIGN
        try:
            _write_all(self._fd, view[:whole], len(view))
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # Refused (a file system without direct I/O for this file): the rest of the shard
            # goes through the page cache, from where the direct writes stopped.
            done = os.lseek(self._fd, 0, os.SEEK_CUR) - self._written
            self._buffered()
            _write_all(self._fd, view[done:])
            return
        if whole < len(view):  # the shard's end: its last bytes go through the page cache
            self._buffered()
            _write_all(self._fd, view[whole:])

    def _buffered(self) -> None:
        """Go on without direct I/O (for the shard's unaligned end, or where refused)."""
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_O_DIRECT)
        self.direct = False

    def _raise_error(self) -> None:
        if self._error is not None:
            raise EnvironmentProblem(
                f"cannot write shard: {self._error.strerror or self._error}") from self._error

    def close(self, durable: bool) -> str:
        """Stop the thread, fsync when `durable`, close; returns the sha256."""
        if self._thread is not None and self._queue is not None:
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


@dataclass(frozen=True)
class DurableShard:
    """A shard complete and fsynced under its temporary name, not yet under its own: `publish`
    renames it, `discard` drops it. Lets writers finish shards in any order while they become
    visible in shard order."""

    temp: Path
    final: Path
    bytes: int
    sha256: str

    def publish(self) -> ShardFile:
        """Rename to the final name (atomic: a reader never sees half a shard)."""
        os.replace(self.temp, self.final)
        return ShardFile(self.final, self.bytes, self.sha256)

    def discard(self) -> None:
        """Drop the temporary file (idempotent)."""
        self.temp.unlink(missing_ok=True)


class ShardWriter:
    """Writes one tar shard: `add`/`add_verified` members in order, then `commit` (or
    `finish` and later `DurableShard.publish`), or `abort`.

    Members are assembled in a staging buffer: header, data and padding of small members are
    copied in, images are read from their source straight into it and verified there. Use as
    a context manager; leaving the block before `commit`/`finish` removes the temporary file.
    `background=False` writes and hashes on the calling thread (unless direct I/O needs the
    thread); `buffer_bytes` is the size of a staging buffer (at least a tar record); `direct`
    uses direct I/O where the file system takes it.
    """

    def __init__(
        self,
        final: Path,
        *,
        background: bool = True,
        buffer_bytes: int = _STAGING,
        direct: bool = True,
    ) -> None:
        if buffer_bytes < RECORD:
            raise ValueError(f"a staging buffer holds at least {RECORD} bytes")
        self.final = final
        self.temp = temp_path_for(final)
        self._sink = _Sink(self.temp, background, buffer_bytes, direct)
        # With direct I/O a buffer goes out in whole ALIGN blocks and its last partial block
        # (at most ALIGN - 1 bytes) starts the next one: a member fits if it fits after that.
        self._carry = self._sink.direct
        self._limit = buffer_bytes - (ALIGN - 1 if self._carry else 0)
        self._buf = self._sink.buffer()
        self._view = memoryview(self._buf)
        self._pos = 0  # bytes staged in _buf
        self._flushed = 0  # bytes handed to the sink
        self._done = False

    @property
    def direct_io(self) -> bool:
        """Whether the shard is written with direct I/O (the file system took it)."""
        return self._carry

    def _room(self, need: int) -> None:
        """Make sure `need` bytes fit after the staged ones (sending the buffer off if not)."""
        if self._pos + need > len(self._buf):
            self._flush()

    def _flush(self, final: bool = False) -> None:
        """Send the staged bytes to the sink; with direct I/O (unless `final`) only whole
        ALIGN blocks, the rest moving to the start of the next buffer."""
        keep = self._pos % ALIGN if self._carry and not final else 0
        send = self._pos - keep
        if not send:
            return
        tail = bytes(self._view[send : self._pos])  # copied out before the sink reuses it
        self._sink.put(self._buf, send, recycle=True)
        self._buf = self._sink.buffer()  # (without a thread, the one just written)
        self._view = memoryview(self._buf)
        self._view[:keep] = tail
        self._flushed += send
        self._pos = keep

    def _stage(self, data: memoryview) -> None:
        """Copy `data` into staging buffers, sending each off as it fills."""
        while data:
            if self._pos == len(self._buf):
                self._flush()
            step = min(len(data), len(self._buf) - self._pos)
            self._view[self._pos : self._pos + step] = data[:step]
            self._pos += step
            data = data[step:]

    def _zeros(self, count: int) -> None:
        """Stage `count` zero bytes (at most a record)."""
        self._stage(_ZERO_VIEW[:count])

    def add(self, name: str, data: bytes) -> None:
        """Append one member with `data` as its content."""
        size = len(data)
        header = member_header(name, size)
        padded = _padded(size)
        if size < _UNSTAGED and BLOCK + padded <= self._limit:
            # Inline (two or three members per sample): header, data, zero padding.
            self._room(BLOCK + padded)
            pos, view = self._pos + BLOCK, self._view
            view[pos - BLOCK : pos] = header
            view[pos : pos + size] = data
            view[pos + size : pos + padded] = _ZEROS[: padded - size]
            self._pos = pos + padded
            return
        self._stage(memoryview(header))
        if self._carry:  # direct I/O writes only from aligned staging buffers
            self._stage(memoryview(data))
        else:  # large data goes to the sink from its own buffer rather than copied
            self._flush()
            self._sink.put(data, size, recycle=False)
            self._flushed += size
        self._zeros(padded - size)

    def add_verified(
        self, name: str, sha256: str, size: int, locations: Sequence[ByteLocation]
    ) -> bool:
        """Append the image whose sha256 is `sha256` (`size` bytes in the catalog), from the
        first of `locations` that holds it; False, with nothing appended, if none does.

        The bytes are read into the staging buffer and hashed there before they can reach
        the file, so the shard never holds bytes other than the catalog's.
        """
        room = BLOCK + _padded(size) + 1  # one more byte than the image: see read_verified_into
        if room <= self._limit:
            self._room(room)
            start = self._pos + BLOCK
            view = self._view
            if read_verified_into(sha256, size, locations, view[start : start + size + 1]):
                view[self._pos : start] = member_header(name, size)
                padded = start + _padded(size)
                view[start + size : padded] = _ZEROS[: padded - start - size]
                self._pos = padded
                return True
        # Larger than a staging buffer, or not found as `size` bytes: the whole-read path.
        data = read_verified(sha256, locations)
        if data is None:
            return False
        self.add(name, data)
        return True

    def finish(self, expect_sha256: str | None = None) -> DurableShard:
        """Finish the archive and make it durable under its temporary name.

        With `expect_sha256` (the hash recorded when this shard was first committed), bytes
        that differ are a determinism bug: the new file is dropped, the old one is left alone
        and DeterminismError is raised.
        """
        self._zeros(2 * BLOCK)
        self._zeros(-(self._flushed + self._pos) % RECORD)
        size = self._flushed + self._pos
        self._flush(final=True)
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
        return DurableShard(self.temp, self.final, size, digest)

    def commit(self, expect_sha256: str | None = None) -> ShardFile:
        """`finish`, then rename the shard to its final name."""
        return self.finish(expect_sha256).publish()

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
