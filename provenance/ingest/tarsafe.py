"""Streaming, read-only iteration over (possibly hostile) tar archives such as WebDataset shards.

Nothing is ever extracted. Members with absolute or `..` paths, links, devices and FIFOs, and
members above a size limit are reported as problems; a truncated archive ends the iteration
with a problem naming the last good member. Groups follow the WebDataset convention: the key is
the member path up to the first dot of its base name.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "avif", "heic"})


@dataclass(frozen=True)
class TarMember:
    name: str
    offset: int  # where the member's data starts in the archive
    size: int


@dataclass
class TarSample:
    """The members that share one WebDataset key, by extension."""

    key: str
    members: dict[str, TarMember] = field(default_factory=dict)


@dataclass(frozen=True)
class TarProblem:
    member: str
    reason: str


def member_problem(info: tarfile.TarInfo, max_member_bytes: int) -> str | None:
    """Why a member must not be used, or None when it is a plain, safely named file."""
    name = info.name
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path in tar member name"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in tar member name"
    if info.issym() or info.islnk():
        return f"link member ({'symlink' if info.issym() else 'hard link'} to {info.linkname!r})"
    if info.isdev() or info.isfifo():
        return "device or FIFO member"
    if not info.isfile():
        return None if info.isdir() else f"unsupported member type {info.type!r}"
    if info.size > max_member_bytes:
        return f"member is {info.size} bytes, larger than the limit of {max_member_bytes}"
    return None


def split_key(name: str) -> tuple[str, str]:
    """WebDataset key and extension: 'dir/000123.jpg' -> ('dir/000123', 'jpg')."""
    directory, base = posixpath.split(name)
    stem, dot, ext = base.partition(".")
    key = posixpath.join(directory, stem) if directory else stem
    return key, ext.lower() if dot else ""


def iter_tar(path: str, max_member_bytes: int) -> Iterator[TarSample | TarProblem]:
    """Yield samples (grouped consecutive members) and problems, in archive order."""
    current: TarSample | None = None
    last_good = "(start of archive)"
    try:
        with tarfile.open(path, mode="r:") as archive:
            for info in archive:
                if info.isdir():
                    continue
                problem = member_problem(info, max_member_bytes)
                if problem:
                    yield TarProblem(info.name, problem)
                    continue
                key, ext = split_key(info.name)
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = TarSample(key)
                current.members[ext] = TarMember(info.name, info.offset_data, info.size)
                last_good = info.name
    except (tarfile.TarError, EOFError, OSError) as exc:
        if current is not None:
            yield current
            current = None
        yield TarProblem(last_good, f"truncated or corrupt tar after {last_good!r}: {exc}")
    if current is not None:
        yield current


def image_member(sample: TarSample) -> tuple[str, TarMember] | None:
    for ext, member in sorted(sample.members.items()):
        if ext in IMAGE_EXTS:
            return ext, member
    return None
