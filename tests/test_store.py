"""ContentStore: layout, atomic idempotent writes, hash validation, concurrent writers."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from provenance.errors import BadInput, EnvironmentProblem
from provenance.samples import image_bytes
from provenance.store import ContentStore


def test_put_stores_under_sharded_hash_path(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    data = image_bytes(3)
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    path = store.path_for(digest)
    assert path == tmp_path / "store" / "objects" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == data
    assert store.has(digest) and store.read(digest) == data
    with store.open(digest) as handle:
        assert handle.read(4) == data[:4]


def test_put_is_idempotent_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = b"same bytes"
    assert store.put(data) == store.put(data)
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [hashlib.sha256(data).hexdigest()]


def test_concurrent_writers_of_the_same_object(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    data = image_bytes(4)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store.put(data))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert store.read(results[0]) == data
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "a" * 63, "/" + "a" * 63, ""])
def test_paths_only_from_valid_hashes(tmp_path: Path, bad: str) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(BadInput):
        store.path_for(bad)
    assert not store.has("0" * 64)


def test_missing_object_and_unwritable_root(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(BadInput, match="not in the content store"):
        store.open("0" * 64)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    with pytest.raises(EnvironmentProblem, match="cannot write to the content store"):
        ContentStore(blocker).put(b"x")
