"""How shards are written: the staged writer against Python's tarfile as the reference, the
verified reads that fill it, and shards written side by side in worker processes against one
after another."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.config import Settings
from provenance.errors import EnvironmentProblem
from provenance.export.sources import ByteLocation
from provenance.export.writer import BLOCK, FIXED_MTIME, RECORD, ShardWriter
from provenance.services import export_pool
from provenance.services.export import ExportOptions, prepare_export
from tests.test_export import ITEMS, Item, build_catalog

# Sizes around block and buffer boundaries, and past the smallest buffer used below.
SIZES = st.one_of(st.integers(0, 3 * BLOCK), st.sampled_from([BLOCK - 1, BLOCK, BLOCK + 1]),
                  st.integers(0, 40_000))


def reference_tar(members: list[tuple[str, bytes]]) -> bytes:
    """The same members written by tarfile with the writer's fixed metadata."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.tuples(SIZES, st.booleans()), max_size=12),
    background=st.booleans(),
    buffer_bytes=st.sampled_from([RECORD, 3 * RECORD, 1 << 20]),
    direct=st.booleans(),
)
def test_staged_shards_equal_tarfile_output(
    tmp_path: Path, sizes: list[tuple[int, bool]], background: bool, buffer_bytes: int,
    direct: bool,
) -> None:
    """Whatever the buffers, threads and I/O mode, a shard is exactly what tarfile writes."""
    members: list[tuple[str, bytes]] = []
    target = tmp_path / f"s-{background}-{buffer_bytes}-{direct}.tar"
    with ShardWriter(target, background=background, buffer_bytes=buffer_bytes,
                     direct=direct) as writer:
        for i, (size, from_file) in enumerate(sizes):
            data = hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1)
            data = data[:size]
            name = f"{i:04d}.{'jpg' if from_file else 'json'}"
            members.append((name, data))
            if not from_file:
                writer.add(name, data)
                continue
            source = tmp_path / f"src-{i}"
            source.write_bytes(data)
            sha = hashlib.sha256(data).hexdigest()
            assert writer.add_verified(name, sha, size, [ByteLocation(str(source))])
        done = writer.commit()
    expected = reference_tar(members)
    written = target.read_bytes()
    assert written == expected
    assert (done.bytes, done.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    target.unlink()


def test_verified_images_come_from_the_first_location_that_holds_them(tmp_path: Path) -> None:
    image = os.urandom(30_000)
    sha = hashlib.sha256(image).hexdigest()
    wrong = tmp_path / "wrong"
    wrong.write_bytes(os.urandom(30_000))  # same size, other bytes
    grown = tmp_path / "grown"
    grown.write_bytes(image + b"!")  # the image with a byte appended since
    inside = tmp_path / "inside.bin"
    inside.write_bytes(b"head" + image + b"tail")
    good = ByteLocation(str(inside), 4, len(image))
    gone = ByteLocation(str(tmp_path / "absent"))
    candidates = [gone, ByteLocation(str(wrong)), ByteLocation(str(grown)), good]

    with ShardWriter(tmp_path / "a.tar", background=False, buffer_bytes=RECORD * 4) as writer:
        assert writer.add_verified("x.jpg", sha, len(image), candidates)
        # Nothing holds these bytes: nothing is appended.
        assert not writer.add_verified("y.jpg", sha, len(image), candidates[:3])
        # A catalog size that disagrees with the bytes still finds them (whole-read path);
        # so does an image larger than the staging buffer.
        assert writer.add_verified("z.jpg", sha, len(image) - 1, candidates)
        writer.commit()
    with tarfile.open(tmp_path / "a.tar") as tar:
        assert tar.getnames() == ["x.jpg", "z.jpg"]
        for name in ("x.jpg", "z.jpg"):
            member = tar.extractfile(name)
            assert member is not None and member.read() == image


def test_a_file_system_refusing_direct_io_gets_the_same_shard_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems accept O_DIRECT at open and refuse the writes (EINVAL): the shard
    goes on through the page cache from where the direct writes stopped, with the same bytes."""
    real_write = os.write
    refused = []

    def refuse_direct(fd: int, data: Any) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    members = [(f"{i}.bin", bytes([i]) * (5000 + 700 * i)) for i in range(40)]
    monkeypatch.setattr(os, "write", refuse_direct)
    with ShardWriter(tmp_path / "s.tar", buffer_bytes=3 * RECORD) as writer:
        if not writer.direct_io:
            pytest.skip("this file system does not take O_DIRECT at open")
        for name, data in members:
            writer.add(name, data)
        done = writer.commit()
    assert refused, "the direct write was never attempted"
    assert done.path.read_bytes() == reference_tar(members)


def test_shards_use_direct_io_where_the_file_system_takes_it(tmp_path: Path) -> None:
    """On Linux's usual file systems (ext4, xfs, btrfs, tmpfs since 6.6) the shard bypasses
    the page cache; elsewhere it is written buffered, and the bytes are the same either way."""
    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    probe = tmp_path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
    except OSError:
        pytest.skip("this file system refuses O_DIRECT")
    with ShardWriter(tmp_path / "d.tar") as direct, ShardWriter(
            tmp_path / "b.tar", direct=False) as buffered:
        assert direct.direct_io and not buffered.direct_io
        for writer in (direct, buffered):
            writer.add("a.txt", b"a" * 70_000)
        paths = [w.commit().path for w in (direct, buffered)]
    expected = reference_tar([("a.txt", b"a" * 70_000)])
    assert paths[0].read_bytes() == paths[1].read_bytes() == expected


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("direct", [True, False])
def test_a_failing_write_raises_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, background: bool, direct: bool
) -> None:
    def full_disk(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    writer = ShardWriter(tmp_path / "s.tar", background=background, buffer_bytes=RECORD,
                         direct=direct)
    monkeypatch.setattr(os, "write", full_disk)
    with writer, pytest.raises(EnvironmentProblem, match="No space left"):
        for i in range(20):
            writer.add(f"{i}.txt", b"x" * 3000)
        writer.commit()
    assert list(tmp_path.iterdir()) == []


def test_finished_shards_appear_only_when_published(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "s.tar") as writer:
        writer.add("a.txt", b"a")
        durable = writer.finish()
    assert not durable.final.exists() and durable.temp.exists()
    assert durable.publish().path == tmp_path / "s.tar" and not durable.temp.exists()
    durable.discard()  # after publishing: nothing to drop
    assert (tmp_path / "s.tar").exists()


def _export(cli: Any, policy: Path, out: Path, *extra: str, expect: int = 0) -> Any:
    return cli("export", "--policy", str(policy), "--out", str(out), "--shard-size", "1",
               "--json", *extra, expect=expect)


def test_worker_processes_write_the_same_shards_as_one_process(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build_catalog(settings, tmp_path / "src")
    assert export_pool.worker_count(6, 2) == 2 and export_pool.worker_count(1, 8) == 1
    pooled = json.loads(_export(cli, policy_file, tmp_path / "pooled").stdout)
    monkeypatch.setattr(export_pool, "usable_cpus", lambda: 1)
    single = json.loads(_export(cli, policy_file, tmp_path / "single").stdout)
    assert len(pooled["shards"]) == 6
    assert [(Path(s["path"]).name, s["sha256"]) for s in pooled["shards"]] == [
        (Path(s["path"]).name, s["sha256"]) for s in single["shards"]]
    for shard in pooled["shards"]:
        assert hashlib.sha256(Path(shard["path"]).read_bytes()).hexdigest() == shard["sha256"]


def test_a_failing_worker_stops_the_export_after_the_shards_before_it(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    items = [*ITEMS, Item(9, "CC0-1.0", "file"), Item(10, "MIT", "file")]
    src = tmp_path / "src"
    keys = build_catalog(settings, src, items)
    clean = json.loads(_export(cli, policy_file, tmp_path / "clean").stdout)
    names = [Path(s["path"]).name for s in clean["shards"]]
    shard_of = {key: i for i, s in enumerate(clean["shards"]) for key in _keys(Path(s["path"]))}
    # A file-backed image in neither the first nor the last shard is edited after planning.
    seed, index = next((item.seed, shard_of[keys[item.seed]]) for item in items
                       if keys[item.seed] in shard_of and item.where == "file"
                       and 0 < shard_of[keys[item.seed]] < len(names) - 1)
    out = tmp_path / "out"
    prepare_export(settings, ExportOptions(policy_file, out, shard_size=1))  # plan only
    (src / f"img{seed}.jpeg").write_bytes(b"edited since")
    failed = _export(cli, policy_file, out, expect=3)
    assert "no longer readable" in failed.stderr
    assert sorted(p.name for p in out.glob("*.tar")) == names[:index]
    assert not list(out.glob(".*.tmp"))


def _keys(shard: Path) -> set[str]:
    with tarfile.open(shard) as tar:
        return {name.split(".")[0] for name in tar.getnames()}
