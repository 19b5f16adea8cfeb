"""`provenance export` end to end on SQLite and PostgreSQL: a small real catalog (Pillow images
whose bytes live in the content store, in local files and inside a local tar), a permissive
test policy, shards read back with `webdataset` as a training loader would."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import webdataset as wds
from sqlalchemy import update

from provenance.config import Settings
from provenance.db.catalog import insert_sightings, record_images
from provenance.db.engine import make_engine
from provenance.db.models import Base
from provenance.domain import utcnow
from provenance.ingest.analyze import analyze_bytes
from provenance.ingest.keys import sighting_key
from provenance.licenses import normalize_license
from provenance.samples import image_bytes
from provenance.services.export import CRASH_AFTER_ENV
from provenance.store import ContentStore

POLICY = """\
name = "test-permissive"
description = "Tests only: CC0, CC BY and MIT; no signal is required."

[licenses]
allow = ["cc0", "cc-by", "mit"]
attribution = true

[signals]
tokens = ["provenance-bot"]
count = []
"""


@dataclass(frozen=True)
class Item:
    seed: int
    license: str
    where: str  # store | file | tar | none
    fmt: str = "JPEG"
    caption: str | None = None


ITEMS = [
    Item(1, "CC-BY-4.0", "file", caption="a red square"),
    Item(2, "CC0-1.0", "store"),
    Item(3, "MIT", "tar", fmt="PNG", caption="a png in a tar"),
    Item(4, "CC-BY-NC-4.0", "file"),  # license not allowed
    Item(5, "CC-BY-4.0", "none"),  # bytes nowhere -> missing-bytes
    Item(6, "CC-BY-4.0", "store", fmt="PNG"),
    Item(7, "CC0-1.0", "file", caption="seven"),
    Item(8, "CC-BY-4.0", "tar"),
]
PERMITTED = {1, 2, 3, 6, 7, 8}


def _place(item: Item, data: bytes, sha: str, root: Path, store: ContentStore) -> dict[str, Any]:
    """Put the bytes where the item says; return the sighting's local_* columns."""
    if item.where == "store":
        store.put(data)
        return {}
    if item.where == "file":
        path = root / f"img{item.seed}.{item.fmt.lower()}"
        path.write_bytes(data)
        return {"local_path": str(path)}
    if item.where == "tar":
        tar_path = root / f"shard{item.seed}.tar"
        with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo(f"{sha}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        with tarfile.open(tar_path) as tar:
            member = tar.getmembers()[0]
            return {"local_path": str(tar_path), "local_offset": member.offset_data,
                    "local_length": member.size}
    return {}


def build_catalog(settings: Settings, root: Path, items: list[Item] = ITEMS) -> dict[int, str]:
    """Insert images and sightings with the catalog's own write functions; seed -> sha256."""
    root.mkdir(parents=True, exist_ok=True)
    store = ContentStore(settings.store_dir)
    now = utcnow()
    keys: dict[int, str] = {}
    facts, sightings = [], []
    for item in items:
        data = image_bytes(item.seed, fmt=item.fmt)
        fact = analyze_bytes(data)
        keys[item.seed] = fact.sha256
        facts.append(fact)
        url = f"https://img.example.org/{item.seed}.jpg"
        sightings.append({
            "sighting_key": sighting_key("test", url, fact.sha256), "image_sha256": fact.sha256,
            "status": "ok", "url": url, "host": "img.example.org", "domain": "example.org",
            "source_name": "test", "origin_kind": "file", "origin": f"item-{item.seed}",
            "license_raw": item.license,
            "license_spdx": normalize_license(item.license).spdx_id,
            "creator": f"Creator {item.seed}", "title": f"Picture {item.seed}",
            "caption": item.caption, "seen_at": now,
            **_place(item, data, fact.sha256, root, store),
        })
    # Every row with every column, in table order (the batched insert compiles one statement).
    columns = [c.name for c in Base.metadata.tables["sightings"].columns if c.name != "id"]
    rows = [{c: row.get(c) for c in columns} for row in sightings]
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        record_images(conn, facts, None, now)
        insert_sightings(conn, rows)
    engine.dispose()
    return keys


def read_samples(shards: list[str]) -> list[dict[str, Any]]:
    return list(wds.WebDataset(shards, shardshuffle=False, empty_check=False))


def run_summary(stderr: str) -> tuple[str, int]:
    """(status, shards written by this run) from the summary line on stderr."""
    found = re.search(r"^(\S+): .*shards written by this run: (\d+)$", stderr, re.M)
    assert found is not None, stderr
    return found.group(1), int(found.group(2))


def export_json(cli: Any, policy: Path, out: Path, *extra: str, **kw: Any) -> dict[str, Any]:
    """`export --json`: the CLI.md document, plus `status`/`written` read from stderr."""
    result = cli("export", "--policy", str(policy), "--out", str(out), "--json", *extra, **kw)
    doc = dict(json.loads(result.stdout))
    assert set(doc) == {"export_id", "out", "shards", "included", "excluded"}
    doc["status"], doc["written"] = run_summary(result.stderr)
    return doc


def shard_hashes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(Path(s["path"]).name, s["sha256"]) for s in doc["shards"]]


def test_export_writes_exactly_the_permitted_images(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    keys = build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    doc = export_json(cli, policy_file, out, "--shard-size", "4")

    assert doc["included"] == len(PERMITTED)
    assert doc["excluded"]["missing-bytes"] == 1
    assert doc["excluded"]["license-not-allowed"] == 1
    assert [s["samples"] for s in doc["shards"]] == [4, 2]
    samples = read_samples([s["path"] for s in doc["shards"]])
    assert {s["__key__"] for s in samples} == {keys[i] for i in PERMITTED}
    assert [s["__key__"] for s in samples] == sorted(keys[i] for i in PERMITTED)
    by_seed = {seed: next(s for s in samples if s["__key__"] == k)
               for seed, k in keys.items() if seed in PERMITTED}
    for seed, sample in by_seed.items():
        image = sample.get("jpg") or sample.get("png")
        assert image is not None and hashlib.sha256(image).hexdigest() == keys[seed]
        meta = json.loads(sample["json"])
        assert meta["url"] == f"https://img.example.org/{seed}.jpg"
        assert meta["license"]["raw"] == ITEMS[seed - 1].license
        assert meta["creator"] == f"Creator {seed}"
        assert meta["policy"]["name"] == "test-permissive"
        assert isinstance(meta["signals"], list)
        assert "export_id" not in meta
        assert (meta["attribution"] is None) == (ITEMS[seed - 1].license == "CC0-1.0")
    assert "png" in by_seed[3] and by_seed[3]["txt"] == b"a png in a tar"
    assert "txt" not in by_seed[2]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["export_id"] == doc["export_id"]
    assert manifest["policy"]["text"] == POLICY
    assert manifest["policy"]["sha256"] == hashlib.sha256(POLICY.encode()).hexdigest()
    assert manifest["catalog"]["evaluated"] >= len(ITEMS)
    for entry in manifest["shards"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    credited = (out / "ATTRIBUTION.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in credited) == sorted(
        keys[i] for i in PERMITTED if ITEMS[i - 1].license != "CC0-1.0")
    assert "Creator 1" in (out / "ATTRIBUTION.md").read_text()
    assert not list(out.glob(".*.tmp"))

    listed = json.loads(cli("exports", "list", "--json").stdout)["exports"]
    assert [(e["export_id"], e["status"]) for e in listed] == [(doc["export_id"], "complete")]
    shown = json.loads(cli("exports", "show", str(doc["export_id"]), "--json").stdout)
    assert [s["sha256"] for s in shown["shards"]] == [s["sha256"] for s in doc["shards"]]


def test_croissant_metadata_validates(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    mlc = pytest.importorskip("mlcroissant")
    build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    export_json(cli, policy_file, out, "--shard-size", "4")
    doc = json.loads((out / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    tars = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    assert [t["contentUrl"] for t in tars] == ["shard-000000.tar", "shard-000001.tar"]
    fields = {f["name"] for f in doc["recordSet"][0]["field"]}
    assert {"key", "url", "license", "creator", "caption"} <= fields
    dataset = mlc.Dataset(jsonld=out / "croissant.json")
    assert not dataset.metadata.ctx.issues.errors


def test_exports_are_deterministic_across_runs_and_partitions(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    build_catalog(settings, tmp_path / "src")
    first = export_json(cli, policy_file, tmp_path / "a", "--shard-size", "2")
    second = export_json(cli, policy_file, tmp_path / "b", "--shard-size", "2")
    assert first["export_id"] != second["export_id"]
    assert shard_hashes(first) == shard_hashes(second)
    assert len(first["shards"]) == 3

    parts = [export_json(cli, policy_file, tmp_path / "p", "--shard-size", "2",
                         "--partition", f"{i}/3") for i in range(3)]
    assert parts[-1]["status"] == "complete"
    assert {p["export_id"] for p in parts} == {parts[0]["export_id"]}
    assert sum(p["written"] for p in parts) == 3
    assert shard_hashes(parts[-1]) == shard_hashes(first)
    assert (tmp_path / "p" / "manifest.json").exists()

    again = export_json(cli, policy_file, tmp_path / "a", "--shard-size", "2")
    assert again["export_id"] == first["export_id"] and again["written"] == 0


def test_interrupted_export_resumes_with_identical_bytes(
    settings: Settings, cli: Any, tmp_path: Path, policy_file: Path
) -> None:
    build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "provenance", "--db", settings.db_url,
            "--store", str(settings.store_dir), "export", "--policy", str(policy_file),
            "--out", str(out), "--shard-size", "2", "--json"]
    env = {**os.environ, CRASH_AFTER_ENV: "1"}
    crashed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 137
    assert sorted(p.name for p in out.glob("*.tar")) == ["shard-000000.tar"]
    assert not (out / "manifest.json").exists()
    listed = json.loads(cli("exports", "list", "--json").stdout)["exports"]
    assert [e["status"] for e in listed] == ["writing"]

    resumed = export_json(cli, policy_file, out, "--shard-size", "2", "--resume")
    assert resumed["status"] == "complete" and resumed["written"] == 2
    clean = export_json(cli, policy_file, tmp_path / "clean", "--shard-size", "2")
    assert shard_hashes(resumed) == shard_hashes(clean)
    assert (out / "manifest.json").exists()


def test_rewriting_a_committed_shard_differently_is_a_determinism_error(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    doc = export_json(cli, policy_file, out, "--shard-size", "4")
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:  # simulate a shard committed with other bytes
        conn.execute(update(Base.metadata.tables["export_shards"]).values(sha256="0" * 64))
    engine.dispose()
    first = Path(doc["shards"][0]["path"])
    original = first.read_bytes()
    first.unlink()
    result = cli("export", "--policy", str(policy_file), "--out", str(out), "--shard-size", "4",
                 expect=3)
    assert "determinism" in result.stderr
    assert not first.exists() and not list(out.glob(".*.tmp"))
    assert hashlib.sha256(original).hexdigest() == doc["shards"][0]["sha256"]


def test_dry_run_writes_nothing_and_bad_input_exits_2(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    doc = export_json(cli, policy_file, out, "--shard-size", "4", "--dry-run")
    assert doc["export_id"] is None and [s["samples"] for s in doc["shards"]] == [4, 2]
    assert not out.exists()
    assert json.loads(cli("exports", "list", "--json").stdout)["exports"] == []

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[licenses]\nallow = ["cc-by"]\nbogus = 1\n')
    result = cli("export", "--policy", str(bad), "--out", str(out), expect=2)
    assert "bogus" in result.stderr
    cli("export", "--policy", str(policy_file), "--out", str(out), "--shard-size", "0", expect=2)
    cli("export", "--policy", str(policy_file), "--out", str(out), "--resume", expect=2)
    assert not list(out.glob("*.tar"))
