"""Content-addressed store for fetched image bytes: `objects/ab/cd/<sha256>` under a root.

Objects are written to a temporary file inside the store and renamed into place, so a reader
never sees a partial object and a crash leaves at most a stray temp file. Paths come only
from validated lowercase hex digests, so nothing is ever written outside the root.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from provenance.errors import BadInput, EnvironmentProblem

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise BadInput(f"not a sha256 (64 lowercase hex digits): {sha256!r}")
    return sha256


class ContentStore:
    """Bytes by sha256. Writes are atomic and idempotent; safe from many threads/processes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"

    def path_for(self, sha256: str) -> Path:
        """Where the object with this hash lives (whether or not it exists)."""
        digest = _check(sha256)
        return self.objects / digest[:2] / digest[2:4] / digest

    def has(self, sha256: str) -> bool:
        """True if the object is stored."""
        return self.path_for(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored object for reading; BadInput if it is not in the store."""
        path = self.path_for(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise BadInput(f"{sha256} is not in the content store at {self.root}") from None

    def read(self, sha256: str) -> bytes:
        """The bytes of a stored object."""
        with self.open(sha256) as handle:
            return handle.read()

    def put(self, data: bytes) -> str:
        """Store `data` under its sha256 and return the hash (a no-op if already stored)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.is_file():
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                # Atomic on POSIX; a concurrent writer of the same hash wrote the same bytes.
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise EnvironmentProblem(
                f"cannot write to the content store {self.root}: {exc.strerror or exc}; "
                "check --store / PROVENANCE_STORE and its permissions"
            ) from exc
        return digest
