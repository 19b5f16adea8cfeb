"""Large URL manifests: rows prepared in a child process, and SQLite's bulk-load index rebuild.

Both are speed paths; these tests hold them to the rows, order, indexes and errors of the
plain path on real manifests a few MB in size.
"""

from __future__ import annotations

import csv
import gc
import json
import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from provenance.config import Settings
from provenance.db import catalog as db
from provenance.db.engine import make_engine
from provenance.db.models import OptOutMatch, Sighting
from provenance.errors import BadInput
from provenance.ingest import background
from provenance.services.ingest import IngestOptions, run_ingest
from tests.conftest import Cli

SKIP = {"id", "run_id", "seen_at"}


def _manifest(path: Path, rows: int, *, broken_at: int | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["URL", "TEXT", "LICENSE", "similarity"])
        for k in range(rows):
            url = f"https://i{k % 613}.cdn{k % 7}.example.com/p/{k:08d}/photo-{k % 31}.jpg"
            if k % 997 == 5:
                url = f"ftp://bad.example/{k}"  # a bad row every so often
            writer.writerow([url, f"caption {k} with a 'quote' and \"more\"",
                             ("CC-BY-4.0", "", "cc0")[k % 3], k / 7])
            if broken_at is not None and k == broken_at:
                fh.flush()
                fh.buffer.write(b"\xff\xfe not UTF-8\n")  # the manifest cannot be read on
    return path


def _rows(url: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Sighting.__table__).order_by(Sighting.id)).mappings()
        out = [{k: v for k, v in row.items() if k not in SKIP} for row in rows]
    engine.dispose()
    return out


def _ingest(settings: Settings, manifest: Path, workers: int) -> dict[str, Any]:
    summary = run_ingest(settings, IngestOptions([manifest], workers=workers))
    return {k: v for k, v in summary.to_json().items() if k != "run_id"}


def test_rows_prepared_in_a_child_process_are_the_inline_rows(
    settings: Settings, sqlite_template: Path, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "big.csv", 45_000)
    assert manifest.stat().st_size >= background.CHILD_MIN_BYTES  # the child path is taken
    inline_url = f"sqlite:///{tmp_path / 'inline.db'}"
    (tmp_path / "inline.db").write_bytes(sqlite_template.read_bytes())
    inline = _ingest(Settings(inline_url, tmp_path / "o1"), manifest, workers=1)
    child = _ingest(settings, manifest, workers=2)
    assert child == inline
    assert child["sightings_new"] > 44_000 and child["bad"] == 46
    assert _rows(settings.db_url) == _rows(inline_url)
    assert multiprocessing.active_children() == []
    assert _ingest(settings, manifest, workers=2)["sightings_new"] == 0  # re-ingest: a no-op


def test_an_error_in_the_child_writes_nothing_and_stops_it(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "broken.csv", 45_000, broken_at=40_000)
    with pytest.raises(BadInput, match="not UTF-8"):
        run_ingest(settings, IngestOptions([manifest], workers=2))
    assert multiprocessing.active_children() == []
    assert _rows(settings.db_url) == []
    result = cli("ingest", str(manifest), "--workers", "2", expect=2)
    assert "not UTF-8" in result.stderr


def _index_names(url: str) -> set[str]:
    engine = make_engine(url)
    names = {ix["name"] for ix in inspect(engine).get_indexes("sightings")}
    engine.dispose()
    return {n for n in names if n}


def test_bulk_load_rebuilds_the_indexes_and_stores_the_same_rows(
    monkeypatch: pytest.MonkeyPatch, sqlite_template: Path, tmp_path: Path
) -> None:
    manifest = _manifest(tmp_path / "m.csv", 3_000)
    urls = {}
    for name, threshold in (("plain", 10**12), ("bulk", 1)):
        monkeypatch.setattr(db, "BULK_MIN_ROWS", threshold)
        path = tmp_path / f"{name}.db"
        path.write_bytes(sqlite_template.read_bytes())
        urls[name] = f"sqlite:///{path}"
        _ingest(Settings(urls[name], tmp_path / f"o-{name}"), manifest, workers=1)
    assert _rows(urls["bulk"]) == _rows(urls["plain"])
    assert set(db.BULK_REBUILT_INDEXES) <= _index_names(urls["bulk"])
    assert _index_names(urls["bulk"]) == _index_names(urls["plain"])
    # A second load into a catalog that already holds more rows than are coming: no rebuild,
    # and the rows are still the same.
    again = _manifest(tmp_path / "small.csv", 1_000)
    for url in urls.values():
        _ingest(Settings(url, tmp_path / "o3"), again, workers=1)
    assert _rows(urls["bulk"]) == _rows(urls["plain"])


def test_bulk_load_is_rolled_back_with_the_rows(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    if not settings.db_url.startswith("sqlite"):
        pytest.skip("the bulk load is SQLite's")
    monkeypatch.setattr(db, "BULK_MIN_ROWS", 1)
    manifest = _manifest(tmp_path / "broken.csv", 3_000, broken_at=2_500)
    with pytest.raises(BadInput):
        run_ingest(settings, IngestOptions([manifest], workers=1))
    assert set(db.BULK_REBUILT_INDEXES) <= _index_names(settings.db_url)
    assert _rows(settings.db_url) == []


def test_standing_optouts_apply_during_a_bulk_sized_load(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    monkeypatch.setattr(db, "BULK_MIN_ROWS", 1)
    added = cli("optout", "add", "--domain", "cdn3.example.com", "--requester", "R", "--json")
    request_id = json.loads(added.stdout)["request_id"]
    _ingest(settings, _manifest(tmp_path / "m.csv", 3_000), workers=1)
    engine = make_engine(settings.db_url)
    with engine.connect() as conn:
        matched = set(conn.execute(select(OptOutMatch.sighting_id).where(
            OptOutMatch.request_id == request_id)).scalars())
        expected = set(conn.execute(select(Sighting.id).where(
            Sighting.host.like("%.cdn3.example.com"))).scalars())
    engine.dispose()
    assert len(expected) > 300 and matched == expected


def test_gc_thresholds_come_back_after_an_ingest(settings: Settings, tmp_path: Path) -> None:
    before = gc.get_threshold()
    _ingest(settings, _manifest(tmp_path / "m.csv", 100), workers=1)
    assert gc.get_threshold() == before
    broken = _manifest(tmp_path / "b.csv", 100, broken_at=50)
    with pytest.raises(BadInput):
        run_ingest(settings, IngestOptions([broken], workers=1))
    assert gc.get_threshold() == before


def _processes_reading(path: Path) -> list[int]:
    """Pids of processes whose command line names `path` (the ingest and its forked child)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def _child_started(manifest: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the ingest has forked its row-preparing child, then a little more, so that
    windows are being written."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_processes_reading(manifest)) >= 2:
            time.sleep(0.3)
            return
        time.sleep(0.01)
    raise AssertionError("the ingest never forked its row-preparing child")


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_large_ingest_leaves_nothing_and_reruns(
    how: signal.Signals, sqlite_template: Path, tmp_path: Path
) -> None:
    """Ctrl-C (or a kill) while a child prepares rows: the manifest is all there or not at all
    (one transaction; Ctrl-C during the final commit lets it finish), no process is left
    behind, and the same command then ends with every row once."""
    manifest = _manifest(tmp_path / "big.csv", 120_000)
    catalog = tmp_path / "c.db"
    catalog.write_bytes(sqlite_template.read_bytes())
    argv = [sys.executable, "-m", "provenance", "--db", f"sqlite:///{catalog}", "ingest",
            str(manifest), "--workers", "2", "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _child_started(manifest, proc)
        proc.send_signal(how)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if how == signal.SIGINT:
        assert proc.returncode == 130 and b"interrupted" in err
    deadline = time.monotonic() + 30
    while _processes_reading(manifest) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_reading(manifest) == []
    kept = len(_rows(f"sqlite:///{catalog}"))
    assert kept in (0, 120_000)
    done = subprocess.run(argv, capture_output=True, timeout=300, check=True)
    assert json.loads(done.stdout)["sightings_new"] == 120_000 - kept - 121 * (kept == 0)
    assert len(_rows(f"sqlite:///{catalog}")) == 120_000
    assert _index_names(f"sqlite:///{catalog}") >= set(db.BULK_REBUILT_INDEXES)
