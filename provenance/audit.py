"""Scanning what a training job would read: WebDataset shards and image folders.

Every image's sha256 is recomputed from the bytes on disk in one streaming pass: tar members are
read at the offsets `tarsafe.iter_tar` reports (nothing is extracted, links are never followed).
Hostile members and truncated archives become findings, not errors. Catalog and policy checks
happen in `services.audit`; this module does file I/O and hashing only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from provenance.errors import BadInput
from provenance.ingest.tarsafe import IMAGE_EXTS, TarProblem, TarSample, iter_tar

# Stable reason codes of audit findings (scripts read them from `audit --json`).
UNKNOWN = "unknown"
OPTED_OUT = "opted-out"
NOT_PERMITTED = "not-permitted"
HASH_MISMATCH = "hash-mismatch"
UNREADABLE = "unreadable"
HOSTILE_MEMBER = "hostile-member"

DEFAULT_MAX_MEMBER_BYTES = 100 * 1024 * 1024
_SHA256_KEY = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ScannedSample:
    """One image as a loader would see it.

    `sha256` is what its bytes hash to (None when they could not be read); `claimed` is the
    sha256 its name states when the shard is ours (our keys are the sha256), else None.
    `problem`/`detail` carry an unreadable or hostile-member finding."""

    key: str
    shard: str
    sha256: str | None
    claimed: str | None = None
    problem: str | None = None
    detail: str | None = None


def _is_tar(path: Path) -> bool:
    return path.suffix.lower() == ".tar"


def _is_image(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in IMAGE_EXTS


def collect_targets(paths: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(root, file) pairs for every shard and image below the given paths, sorted, unique.

    Explicit files must be tar shards or images; inside folders other files (sidecars,
    manifest.json) are not samples and are skipped."""
    found: dict[Path, Path] = {}
    for given in paths:
        if not given.exists():
            raise BadInput(f"no such file or folder: {given}")
        if given.is_dir():
            for path in sorted(given.rglob("*")):
                if path.is_file() and (_is_tar(path) or _is_image(path)):
                    found.setdefault(path, given)
        elif _is_tar(given) or _is_image(given):
            found.setdefault(given, given.parent)
        else:
            raise BadInput(f"not a .tar shard, an image or a folder: {given}")
    return [(root, path) for path, root in sorted(found.items())]


def in_partition(targets: list[tuple[Path, Path]], partition: tuple[int, int] | None
                 ) -> list[tuple[Path, Path]]:
    """Slice I of N: every N-th file of the sorted list (a whole shard stays in one slice)."""
    if partition is None:
        return targets
    index, count = partition
    return [t for pos, t in enumerate(targets) if pos % count == index]


def claimed_hash(name: str) -> str | None:
    """The sha256 a sample name claims: the last path part, when it is 64 lowercase hex."""
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem if _SHA256_KEY.fullmatch(stem) else None


def _hash_range(fh: BinaryIO, offset: int, size: int) -> str | None:
    """sha256 of `size` bytes at `offset`, or None when fewer bytes are there."""
    digest = hashlib.sha256()
    fh.seek(offset)
    remaining = size
    while remaining:
        block = fh.read(min(remaining, _CHUNK))
        if not block:
            return None
        digest.update(block)
        remaining -= len(block)
    return digest.hexdigest()


def _tar_sample(fh: BinaryIO, shard: str, sample: TarSample) -> Iterator[ScannedSample]:
    images = sorted((ext, m) for ext, m in sample.members.items() if ext in IMAGE_EXTS)
    if not images:
        others = ", ".join(sorted(sample.members)) or "none"
        yield ScannedSample(sample.key, shard, None, None, UNREADABLE,
                            f"sample has no image member (members: {others})")
        return
    claimed = claimed_hash(sample.key)
    for _ext, member in images:
        try:
            digest = _hash_range(fh, member.offset, member.size)
        except OSError as exc:
            yield ScannedSample(sample.key, shard, None, claimed, UNREADABLE,
                                f"{member.name}: {exc}")
            continue
        if digest is None:
            yield ScannedSample(sample.key, shard, None, claimed, UNREADABLE,
                                f"{member.name}: member data is truncated")
            continue
        detail = member.name if len(images) > 1 else None
        yield ScannedSample(sample.key, shard, digest, claimed, None, detail)


def scan_tar(path: Path, max_member_bytes: int) -> Iterator[ScannedSample]:
    """Every image sample of one shard; hostile members and truncation as findings."""
    shard = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - held open across the generator's iteration
    except OSError as exc:
        yield ScannedSample("(shard)", shard, None, None, UNREADABLE, str(exc))
        return
    with fh:
        for entry in iter_tar(shard, max_member_bytes):
            if isinstance(entry, TarProblem):
                yield ScannedSample(entry.member, shard, None, None, HOSTILE_MEMBER, entry.reason)
            else:
                yield from _tar_sample(fh, shard, entry)


def scan_image(root: Path, path: Path) -> ScannedSample:
    """One image file of a folder: key is its path relative to the folder given."""
    key = path.relative_to(root).as_posix() if path != root else path.name
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            digest = _hash_range(fh, 0, size)
    except OSError as exc:
        return ScannedSample(key, str(root), None, None, UNREADABLE, str(exc))
    if digest is None:
        return ScannedSample(key, str(root), None, None, UNREADABLE, "file shrank while read")
    return ScannedSample(key, str(root), digest, claimed_hash(key))


def scan(targets: list[tuple[Path, Path]], max_member_bytes: int) -> Iterator[ScannedSample]:
    """Every sample of every target, in target order then archive order."""
    for root, path in targets:
        if _is_tar(path):
            yield from scan_tar(path, max_member_bytes)
        else:
            yield scan_image(root, path)
