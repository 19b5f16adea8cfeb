"""The parts of the export below the service: tar headers, shard writer, shard planning,
byte sources, sample JSON, attribution."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance.db.engine import make_engine
from provenance.errors import DeterminismError
from provenance.export.attribution import Credit, attribution_csv, attribution_text, license_url
from provenance.export.manifest import (
    SampleRecord,
    SampleSource,
    SignalSummary,
    extension_for,
    sample_json,
)
from provenance.export.plan import plan_shards
from provenance.export.sources import ByteLocation, read_verified, read_verified_into
from provenance.export.writer import (
    FIXED_MTIME,
    ShardWriter,
    _tarfile_header,
    _write_all,
    member_header,
)
from provenance.services.export_shards import byte_locations
from provenance.store import ContentStore


@pytest.mark.parametrize(
    ("name", "size"),
    [("a" * 64 + ".json", 12345), ("x.txt", 0), ("é" * 40 + ".jpg", 10**9), ("b" * 100, 5),
     ("c" * 64 + ".webp", 8**11 - 1)],
)
def test_fast_header_matches_tarfile(name: str, size: int) -> None:
    assert member_header(name, size) == _tarfile_header(name, size)


def _write(path: Path, members: list[tuple[str, bytes]]) -> str:
    with ShardWriter(path) as writer:
        for name, data in members:
            writer.add(name, data)
        return writer.commit().sha256


def test_shard_writer_is_deterministic_and_readable(tmp_path: Path) -> None:
    members = [(f"{i:064x}.jpg", bytes([i]) * (i * 700 + 1)) for i in range(5)]
    first = _write(tmp_path / "a.tar", members)
    second = _write(tmp_path / "b.tar", members)
    assert first == second == hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    assert (tmp_path / "a.tar").stat().st_size % tarfile.RECORDSIZE == 0
    with tarfile.open(tmp_path / "a.tar") as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == [m[0] for m in members]
        assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {
            (FIXED_MTIME, 0, 0, "", "", 0o644)}
        assert not any(i.pax_headers for i in infos)
        extracted = tar.extractfile(infos[3])
        assert extracted is not None and extracted.read() == members[3][1]
    assert not list(tmp_path.glob(".*.tmp"))


def test_shard_writer_refuses_different_bytes_for_a_committed_shard(tmp_path: Path) -> None:
    target = tmp_path / "s.tar"
    target.write_bytes(b"old")
    with ShardWriter(target) as writer, pytest.raises(DeterminismError):
        writer.add("k.txt", b"new")
        writer.commit(expect_sha256="0" * 64)
    assert target.read_bytes() == b"old" and not list(tmp_path.glob(".*.tmp"))


def test_abandoned_writer_leaves_no_temp_file(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "s.tar") as writer:
        writer.add("k.txt", b"data")
    assert list(tmp_path.iterdir()) == []


def test_plan_shards_by_count_and_bytes() -> None:
    assert plan_shards([1] * 5, 2, None) == [(0, 2), (2, 4), (4, 5)]
    assert plan_shards([4, 4, 4, 10, 1], None, 8) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert plan_shards([1, 1, 1], 2, 100) == [(0, 2), (2, 3)]
    assert plan_shards([], 3, None) == []


@given(st.lists(st.integers(1, 50), max_size=60), st.integers(1, 7), st.integers(1, 120))
def test_plan_shards_covers_every_sample_within_limits(sizes: list[int], count: int,
                                                       limit: int) -> None:
    bounds = plan_shards(sizes, count, limit)
    assert [i for start, end in bounds for i in range(start, end)] == list(range(len(sizes)))
    for start, end in bounds:
        assert 1 <= end - start <= count
        assert end - start == 1 or sum(sizes[start:end]) <= limit


def test_byte_sources_are_verified_and_tried_in_order(tmp_path: Path) -> None:
    good = b"right bytes"
    sha = hashlib.sha256(good).hexdigest()
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"other bytes")
    tar = tmp_path / "t.bin"
    tar.write_bytes(b"xx" + good + b"yy")
    locations = [ByteLocation(str(tmp_path / "absent")), ByteLocation(str(wrong)),
                 ByteLocation(str(tar), 2, len(good))]
    assert read_verified(sha, locations) == good
    assert read_verified(sha, locations[:2]) is None
    assert locations[2].looks_available(len(good)) and not locations[0].looks_available(1)
    room = memoryview(bytearray(len(good) + 1))
    assert read_verified_into(sha, len(good), locations, room) and room[: len(good)] == good
    assert not read_verified_into(sha, len(good), locations[:2], room)
    # The catalog's size is part of the check: the same bytes under another size are not taken.
    assert not read_verified_into(sha, len(good) - 1, locations, room)


def test_write_all_survives_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(i % 251 for i in range(100_000))
    real_write = os.write
    # A write that takes at most 1000 bytes, as a signal or a full disk can make it do.
    monkeypatch.setattr(os, "write", lambda fd, buf: real_write(fd, bytes(buf[:1000])))
    short = tmp_path / "short"
    fd = os.open(short, os.O_WRONLY | os.O_CREAT)
    _write_all(fd, memoryview(data))
    os.close(fd)
    assert short.read_bytes() == data


def test_store_locations_agree_with_the_content_store(catalog_url: str, tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    sha = store.put(b"stored")
    engine = make_engine(catalog_url)
    found = byte_locations(engine, store, [sha])
    engine.dispose()
    assert found[sha] == [ByteLocation(str(store.path_for(sha)))]


def test_sample_json_is_canonical_and_has_no_run_values() -> None:
    record = SampleRecord(
        key="ab" * 32, image_format="JPEG", byte_size=10,
        sources=[SampleSource("https://a/x.jpg", "s", "CC BY 4.0", "CC-BY-4.0", "Jo", "T", "cap")],
        signals=[SignalSummary("host", "a", "robots", "allowed",
                               datetime(2026, 1, 2, tzinfo=UTC), "https://a/robots.txt", None)],
    )
    raw = sample_json(record, "p", "f" * 64)
    doc = json.loads(raw)
    assert raw == json.dumps(doc, sort_keys=True, ensure_ascii=False,
                             separators=(",", ":")).encode()
    assert doc["signals"][0]["observed_at"] == "2026-01-02T00:00:00Z"
    assert doc["license"] == {"spdx_id": "CC-BY-4.0", "raw": "CC BY 4.0", "attribution_required":
                              True, "url": "https://creativecommons.org/licenses/by/4.0/"}
    assert "export" not in raw.decode() and doc["caption"] == "cap"
    assert extension_for("JPEG") == "jpg" and extension_for(None) == "bin"


def test_attribution_lines_and_license_urls() -> None:
    credit = Credit("k", "Jo Doe", "Dune", "https://a/x.jpg", "CC-BY-SA-3.0-DE", None)
    assert attribution_text(credit) == (
        '"Dune" by Jo Doe (https://a/x.jpg), licensed under CC-BY-SA-3.0-DE '
        "(https://creativecommons.org/licenses/by-sa/3.0/de/)")
    assert license_url("CC0-1.0") == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert license_url("MIT") == "https://spdx.org/licenses/MIT.html"
    assert license_url("MIT OR Apache-2.0") is None
    unknown = Credit("k2", None, None, None, None, "all rights reserved")
    assert unknown.required  # fail closed: no license known, credit listed
    rows = list(csv.reader(io.StringIO(attribution_csv([credit, unknown]))))
    assert rows[0] == ["key", "creator", "title", "source_url", "license", "license_url"]
    assert rows[2][4] == "all rights reserved"
