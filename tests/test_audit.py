"""`provenance audit` on real shards and folders, against a catalog built by `provenance ingest`
on SQLite and PostgreSQL: clean shards, unknown / opted-out / not-permitted samples, renamed
keys, img2dataset-style shards, image folders, and hostile tars (nothing is ever written)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from provenance.audit import HOSTILE_MEMBER, UNREADABLE
from provenance.config import Settings
from provenance.samples import image_bytes
from provenance.services.audit import run_audit

POLICY = """\
name = "audit-test"
description = "Tests only: CC0 and CC BY; no signal is required."

[licenses]
allow = ["cc0", "cc-by"]
attribution = true

[signals]
tokens = ["provenance-bot"]
count = []
"""
LICENSES = {1: "CC-BY-4.0", 2: "CC-BY-4.0", 3: "CC0-1.0", 4: "CC-BY-4.0", 5: "CC-BY-NC-4.0"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def img(seed: int) -> bytes:
    return image_bytes(seed, size=(64, 48))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def our_sample(seed: int, key: str | None = None) -> list[tuple[str, bytes]]:
    data = img(seed)
    key = key or sha(data)
    meta = json.dumps({"sha256": sha(data), "license": LICENSES.get(seed)}).encode()
    return [(f"{key}.jpg", data), (f"{key}.json", meta), (f"{key}.txt", b"caption")]


@pytest.fixture
def catalog(cli: Any, tmp_path: Path) -> dict[str, Any]:
    src = tmp_path / "src"
    src.mkdir()
    for seed, license_text in LICENSES.items():
        (src / f"img{seed}.jpg").write_bytes(img(seed))
        (src / f"img{seed}.json").write_text(json.dumps({"license": license_text}))
    cli("ingest", str(src), "--json")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    return {"policy": str(policy), "keys": {s: sha(img(s)) for s in range(1, 7)}}


def audit_json(cli: Any, *args: str, expect: int) -> dict[str, Any]:
    result = cli("audit", *args, "--json", expect=expect)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_clean_shards_pass(cli: Any, catalog: dict[str, Any], tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "ds-000000.tar", our_sample(1) + our_sample(2))
    write_tar(shards / "ds-000001.tar", our_sample(3))
    (shards / "manifest.json").write_text("{}")  # beside the shards, not a sample
    doc = audit_json(cli, str(shards), "--policy", catalog["policy"], expect=0)
    assert doc == {"samples": 3, "ok": 3, "violations": []}
    events = json.loads(cli("log", "show", "--kind", "audit", "--json").stdout)["events"]
    assert len(events) == 1
    assert events[0]["payload"]["samples"] == 3 and events[0]["payload"]["violations"] == {}
    assert json.loads(cli("log", "verify", "--json").stdout)["ok"] is True


def test_violations_are_found_and_grouped(cli: Any, catalog: dict[str, Any], tmp_path: Path
                                          ) -> None:
    keys = catalog["keys"]
    cli("optout", "add", "--sha256", keys[4], "--requester", "Jane Doe", "--json")
    renamed = keys[2]  # seed 1's bytes under seed 2's key
    shard = write_tar(tmp_path / "dirty-000000.tar",
                      our_sample(1) + our_sample(4) + our_sample(5) + our_sample(6)
                      + our_sample(1, key=renamed))
    doc = audit_json(cli, str(shard), "--policy", catalog["policy"], expect=1)
    assert doc["samples"] == 5 and doc["ok"] == 1
    found = {(v["key"], v["reason"]) for v in doc["violations"]}
    assert found == {(keys[4], "opted-out"), (keys[5], "not-permitted"),
                     (keys[6], "unknown"), (renamed, "hash-mismatch")}
    by_reason = {v["reason"]: v for v in doc["violations"]}
    assert "license-not-allowed" in by_reason["not-permitted"]["detail"]
    assert by_reason["hash-mismatch"]["detail"] == f"bytes hash to {keys[1]}"
    assert {v["shard"] for v in doc["violations"]} == {str(shard)}
    assert set(doc["violations"][0]) == {"key", "shard", "reason", "detail"}
    human = cli("audit", str(shard), "--policy", catalog["policy"], expect=1)
    assert "opted-out: 1" in human.stdout and "hash-mismatch: 1" in human.stdout
    assert "audit FAILED: 4 violation(s)" in human.stderr


def test_default_strict_policy_excludes_unchecked_signals(cli: Any, catalog: dict[str, Any],
                                                          tmp_path: Path) -> None:
    shard = write_tar(tmp_path / "s.tar", our_sample(1))
    doc = audit_json(cli, str(shard), expect=1)
    assert [v["reason"] for v in doc["violations"]] == ["not-permitted"]
    assert "signal-unknown:" in doc["violations"][0]["detail"]


def test_foreign_shards_and_image_folders(cli: Any, catalog: dict[str, Any], tmp_path: Path
                                          ) -> None:
    keys = catalog["keys"]
    # img2dataset-style: numeric keys, a json whose sha256 is of other (downloaded) bytes.
    meta = json.dumps({"key": "000000001", "sha256": "0" * 64, "status": "success"}).encode()
    shard = write_tar(tmp_path / "00000.tar", [
        ("000000001.jpg", img(1)), ("000000001.json", meta), ("000000001.txt", b"a cat"),
        ("000000002.jpg", img(6)), ("000000003.json", meta)])
    folder = tmp_path / "images" / "sub"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(img(3))
    (folder / "b.jpg").write_bytes(img(6))
    (folder / "notes.txt").write_text("not a sample")
    doc = audit_json(cli, str(shard), str(tmp_path / "images"), "--policy", catalog["policy"],
                     expect=1)
    assert doc["samples"] == 5 and doc["ok"] == 2
    assert [(v["key"], v["reason"]) for v in doc["violations"]] == [
        ("000000002", "unknown"), ("000000003", "unreadable"), ("sub/b.jpg", "unknown")]
    assert doc["violations"][0]["detail"] == f"sha256 {keys[6]}: not in the catalog"
    assert doc["violations"][2]["shard"] == str(tmp_path / "images")


def test_partitions_cover_every_shard_once(cli: Any, catalog: dict[str, Any], tmp_path: Path
                                           ) -> None:
    shards = tmp_path / "parts"
    shards.mkdir()
    for i, seed in enumerate((1, 2, 6)):
        write_tar(shards / f"p-{i:06d}.tar", our_sample(seed))
    parts = [audit_json(cli, str(shards), "--partition", f"{i}/2", "--policy",
                        catalog["policy"], expect=None) for i in range(2)]
    assert [p["samples"] for p in parts] == [2, 1]
    assert sum(len(p["violations"]) for p in parts) == 1


def _hostile_tar(path: Path) -> Path:
    data = img(1)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("../../evil.jpg", "/tmp/abs-evil.jpg"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        hard = tarfile.TarInfo("hard.jpg")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/shadow"
        tar.addfile(hard)
        dev = tarfile.TarInfo("dev.jpg")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(dev)
        fifo = tarfile.TarInfo("pipe.jpg")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
        good = tarfile.TarInfo(f"{sha(data)}.jpg")
        good.size = len(data)
        tar.addfile(good, io.BytesIO(data))
    return path


def _tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


def test_hostile_tar_is_reported_never_followed(cli: Any, catalog: dict[str, Any],
                                                tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shard = _hostile_tar(work / "hostile.tar")
    before = _tree(tmp_path)
    doc = audit_json(cli, str(shard), "--policy", catalog["policy"], expect=1)
    assert _tree(tmp_path) == before
    assert not Path("/tmp/abs-evil.jpg").exists()
    reasons = [(v["key"], v["reason"]) for v in doc["violations"]]
    assert reasons == [(name, HOSTILE_MEMBER) for name in (
        "../../evil.jpg", "/tmp/abs-evil.jpg", "link.jpg", "hard.jpg", "dev.jpg", "pipe.jpg")]
    assert doc["samples"] == 7 and doc["ok"] == 1  # the one plain member is fine


def test_truncated_tar_and_huge_members(settings: Settings, catalog: dict[str, Any],
                                        tmp_path: Path) -> None:
    full = write_tar(tmp_path / "full.tar", our_sample(1) + our_sample(2))
    raw = full.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(raw[: 512 + len(img(1)) // 2])  # inside the first image's data
    report = run_audit(settings, [cut], Path(catalog["policy"]))
    assert [v.reason for v in report.violations] == [UNREADABLE, HOSTILE_MEMBER]
    assert report.violations[0].detail.endswith("member data is truncated")  # type: ignore[union-attr]
    assert "truncated or corrupt tar" in (report.violations[1].detail or "")
    assert (report.samples, report.ok) == (2, 0)
    huge = run_audit(settings, [full], Path(catalog["policy"]), max_member_bytes=1000)
    hostile = [v for v in huge.violations if v.reason == HOSTILE_MEMBER]
    assert [v.key.rsplit(".", 1)[1] for v in hostile] == ["jpg", "jpg"]
    assert all("larger than the limit of 1000" in (v.detail or "") for v in hostile)
    # What is left of those samples has no image a loader could use.
    assert [v.reason for v in huge.violations if v not in hostile] == [UNREADABLE] * 2
    assert huge.ok == 0


def test_bad_paths_are_bad_input(cli: Any, catalog: dict[str, Any], tmp_path: Path) -> None:
    result = cli("audit", str(tmp_path / "missing"), expect=2)
    assert "no such file" in result.stderr
    (tmp_path / "list.csv").write_text("url\n")
    cli("audit", str(tmp_path / "list.csv"), expect=2)
