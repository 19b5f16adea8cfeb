"""Scale-out: the same inputs through one process on SQLite, `--engine ray --partitions 4` on
PostgreSQL and four `--partition i/4` processes on PostgreSQL give the same catalog and the
same export shards; an export is byte-identical for N = 1, 3 and 4; a task that dies once is
retried to the same result; a killed run re-run leaves no duplicates; a second export writes
nothing new. Real PostgreSQL (fresh schemas), real local Ray (one per session, 2 CPUs)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webdataset as wds
from sqlalchemy import create_engine, func, select, text

from provenance.config import Settings
from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import Image, Sighting, SignalObservation
from provenance.engine import CRASH_ENV
from provenance.samples import image_bytes
from tests.conftest import PG_URL, Cli, _with_search_path

ray = pytest.importorskip("ray")

POLICY = """\
name = "scale-test"
description = "Tests only: CC0 and CC BY; no signal is required."

[licenses]
allow = ["cc0", "cc-by"]
attribution = true

[signals]
tokens = ["provenance-bot"]
count = []
"""
IMAGES = 24
HOSTS = ["a.example", "b.example.org", "cdn.c.example.net", "d.example", "e.example"]
LICENSES = ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0"]
# Differs between catalogs and runs by design (CLI.md: "timestamps and run ids aside").
VOLATILE = {"observed_at", "seen_at", "first_seen_at", "fetched_at", "run_id", "first_run_id", "id"}

pytestmark = pytest.mark.skipif(not PG_URL, reason="PROVENANCE_TEST_PG_URL not set")


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images with img2dataset sidecars in three folders (one duplicate), a URL manifest."""
    root = tmp_path_factory.mktemp("scale-inputs")
    for k in range(IMAGES):
        folder = root / "images" / f"part{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        seed = 7 if k == 13 else k  # image 13 repeats image 7's bytes
        fmt = "PNG" if seed % 4 == 0 else "JPEG"
        path = folder / f"img{k:03d}.{fmt.lower()}"
        path.write_bytes(image_bytes(seed, (48 + seed % 5, 40), fmt))
        side = {"url": f"https://{HOSTS[k % len(HOSTS)]}/p/{k}.img",
                "license": LICENSES[k % 3], "caption": f"picture number {k}"}
        path.with_suffix(".json").write_text(json.dumps(side))
    lines = ["url,caption,license"] + [
        f"https://{HOSTS[k % len(HOSTS)]}/m/{k}.jpg,row {k},CC0-1.0" for k in range(40)
    ]
    (root / "urls.csv").write_text("\n".join(lines) + "\n")
    (root / "policy.toml").write_text(POLICY)
    return root


@pytest.fixture(scope="module")
def fresh_pg() -> Iterator[Callable[[], str]]:
    """A factory of fresh, migrated PostgreSQL schemas (dropped afterwards)."""
    assert PG_URL
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        schema = f"prov_scale_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        url = _with_search_path(PG_URL, schema)
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        return url

    yield make
    with admin.connect() as conn:
        for schema in made:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _cli(url: str, tmp: Path) -> Cli:
    return Cli(Settings(db_url=url, store_dir=tmp / "objects"))


def _sources(inputs: Path) -> list[str]:
    return [str(inputs / "images"), str(inputs / "urls.csv")]


def _processes(url: str, store: Path, args: list[str], count: int) -> None:
    """`count` separate OS processes, `--partition i/count` each, all at once."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "provenance", "--db", url, "--store", str(store), *args,
             "--partition", f"{i}/{count}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for i in range(count)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()


def _rows(url: str, model: Any, order: list[Any]) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(model).order_by(*order)).mappings().all()
    finally:
        engine.dispose()
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def catalog(url: str) -> dict[str, list[dict[str, Any]]]:
    """The catalog's contents without ids, run ids and timestamps."""
    tables = {
        "images": _rows(url, Image.__table__, [Image.sha256]),
        "sightings": _rows(url, Sighting.__table__, [Sighting.sighting_key]),
        "signals": _rows(url, SignalObservation.__table__,
                         [SignalObservation.scope, SignalObservation.subject,
                          SignalObservation.kind]),
    }
    return tables


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def shards(out: Path) -> list[tuple[str, list[tuple[str, bytes, Any]]]]:
    """Every shard read back with webdataset: names, members in order, image bytes, metadata
    (equal up to times and ids)."""
    found = []
    for tar in sorted(out.glob("*.tar")):
        samples = []
        for sample in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False):
            image = next(v for k, v in sample.items() if k in ("jpg", "jpeg", "png"))
            samples.append((sample["__key__"], image, _strip(json.loads(sample["json"]))))
        found.append((tar.name, samples))
    return found


def tar_bytes(out: Path) -> dict[str, bytes]:
    return {tar.name: tar.read_bytes() for tar in sorted(out.glob("*.tar"))}


def _written(stderr: str) -> int:
    found = re.search(r"shards written by this run: (\d+)", stderr)
    assert found, stderr
    return int(found.group(1))


def _export_args(inputs: Path, out: Path) -> list[str]:
    return ["export", "--policy", str(inputs / "policy.toml"), "--out", str(out),
            "--shard-size", "3", "--json"]


@pytest.fixture(scope="module")
def single(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The reference: one process on SQLite."""
    tmp = tmp_path_factory.mktemp("single")
    url = f"sqlite:///{tmp / 'catalog.db'}"
    cli = _cli(url, tmp)
    cli("init")
    cli("ingest", *_sources(inputs), "--workers", "1", "--json")
    cli(*_export_args(inputs, tmp / "out"))
    return url, tmp / "out"


def test_ray_partitions_match_single_process(
    local_ray: None, inputs: Path, single: tuple[str, Path], fresh_pg: Callable[[], str],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fresh_pg()
    cli = _cli(url, tmp_path)
    # Partition 2's task dies abruptly on its first attempt; Ray retries it.
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, f"2:{marker}")
    done = cli("ingest", *_sources(inputs), "--engine", "ray", "--partitions", "4", "--json")
    assert marker.exists()
    local = json.loads(_cli(single[0], tmp_path)("ingest", *_sources(inputs), "--json").stdout)
    summary = json.loads(done.stdout)
    assert summary["images_new"] == IMAGES - 1 and summary["duplicates"] == 1
    assert summary["sightings_new"] == IMAGES + 40 and summary["pending_fetch"] == 40
    assert local["images_new"] == 0  # the reference catalog already had everything
    assert catalog(url) == catalog(single[0])

    out = tmp_path / "out"
    first = cli(*_export_args(inputs, out)[:-1], "--engine", "ray", "--partitions", "4")
    assert re.search(r"complete: .* shards written by this run: (\d+)", first.stderr)
    result = json.loads(cli(*_export_args(inputs, out)).stdout)
    assert _written(first.stderr) == len(result["shards"]) > 2
    assert shards(out) == shards(single[1])
    before = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}

    again = cli(*_export_args(inputs, out)[:-1], "--engine", "ray", "--partitions", "3")
    assert _written(again.stderr) == 0
    assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == before

    evaluated = json.loads(cli("policy", "eval", "--policy", str(inputs / "policy.toml"),
                               "--engine", "ray", "--partitions", "4", "--json").stdout)
    plain = json.loads(cli("policy", "eval", "--policy", str(inputs / "policy.toml"),
                           "--json").stdout)
    assert evaluated == plain and plain["included"] == result["included"]

    audited = cli("audit", str(out), "--policy", str(inputs / "policy.toml"), "--engine", "ray",
                  "--partitions", "3", "--json")
    assert json.loads(audited.stdout) == json.loads(
        cli("audit", str(out), "--policy", str(inputs / "policy.toml"), "--json").stdout)


def test_partition_processes_match_and_exports_are_byte_identical(
    local_ray: None, inputs: Path, single: tuple[str, Path], fresh_pg: Callable[[], str],
    tmp_path: Path,
) -> None:
    url = fresh_pg()
    store = tmp_path / "objects"
    _processes(url, store, ["ingest", *_sources(inputs), "--workers", "1"], 4)
    assert catalog(url) == catalog(single[0])

    cli = _cli(url, tmp_path)
    cli(*_export_args(inputs, tmp_path / "n1"))
    cli(*_export_args(inputs, tmp_path / "n3"), "--engine", "ray", "--partitions", "3")
    for i in range(4):  # four slices, then a plain run that only finishes (writes nothing)
        cli(*_export_args(inputs, tmp_path / "n4"), "--partition", f"{i}/4")
    last = cli(*_export_args(inputs, tmp_path / "n4")[:-1])
    assert "complete:" in last.stderr and _written(last.stderr) == 0
    one = tar_bytes(tmp_path / "n1")
    assert len(one) > 2
    assert tar_bytes(tmp_path / "n3") == one
    assert tar_bytes(tmp_path / "n4") == one
    assert shards(tmp_path / "n1") == shards(single[1])


def test_killed_ingest_rerun_has_no_duplicates(
    inputs: Path, fresh_pg: Callable[[], str], tmp_path: Path
) -> None:
    """SIGKILL an ingest once something is committed, run it again: every row once."""
    manifests = []
    for m in range(6):
        path = tmp_path / f"rows{m}.csv"
        path.write_text("url,caption\n" + "".join(
            f"https://h{k % 97}.example/{m}/{k}.jpg,c{k}\n" for k in range(4000)))
        manifests.append(str(path))
    url = fresh_pg()
    engine = make_engine(url)
    argv = [sys.executable, "-m", "provenance", "--db", url, "ingest", *manifests]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            with engine.connect() as conn:
                if conn.execute(select(func.count()).select_from(Sighting)).scalar_one():
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.wait(timeout=60)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=120)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Sighting)).scalar_one()
        keys = conn.execute(select(func.count(Sighting.sighting_key.distinct()))).scalar_one()
    engine.dispose()
    assert total == keys == 6 * 4000


def test_engine_flags_are_validated(inputs: Path, single: tuple[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _cli(single[0], tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    missing = cli("policy", "eval", "--policy", str(inputs / "policy.toml"), "--engine", "ray",
                  expect=2)
    assert "pip install 'provenance[ray]'" in missing.stderr
    monkeypatch.undo()
    bad = cli("ingest", str(inputs / "urls.csv"), "--engine", "spark", expect=2)
    assert "--engine must be one of" in bad.stderr
    bad = cli("ingest", str(inputs / "urls.csv"), "--partitions", "4", expect=2)
    assert "--engine ray" in bad.stderr
    bad = cli("ingest", str(inputs / "urls.csv"), "--engine", "ray", "--partition", "0/2",
              expect=2)
    assert "--partitions N" in bad.stderr


def test_copy_path_gives_the_batched_rows(
    fresh_pg: Callable[[], str], tmp_path: Path, inputs: Path
) -> None:
    """A manifest big enough for COPY on PostgreSQL leaves exactly the rows SQLite's batched
    inserts leave, and ingesting it again adds nothing."""
    manifest = big_manifest(tmp_path, 2500)
    lite = f"sqlite:///{tmp_path / 'lite.db'}"
    _cli(lite, tmp_path)("init")
    _cli(lite, tmp_path)("ingest", str(manifest))
    url = fresh_pg()
    first = json.loads(_cli(url, tmp_path)("ingest", str(manifest), "--json").stdout)
    again = json.loads(_cli(url, tmp_path)("ingest", str(manifest), "--json").stdout)
    assert first["sightings_new"] == 2500 and again["sightings_new"] == 0
    assert catalog(url) == catalog(lite)


def big_manifest(folder: Path, rows: int) -> Path:
    """URL rows with LAION-like lengths across many hosts."""
    path = folder / f"big{rows}.csv"
    path.write_text("url,caption,license\n" + "".join(
        f"https://img{k % 211}.cdn{k % 7}.example.com/photos/2021/{k:08d}/large-view.jpg,"
        f"a photo of item {k} on a wooden table in soft light,CC-BY-4.0\n" for k in range(rows)))
    return path
