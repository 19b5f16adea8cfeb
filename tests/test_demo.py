"""`provenance demo` runs the whole flow offline and leaves a catalog and shards behind."""

from __future__ import annotations

import json
from pathlib import Path

import webdataset as wds
from typer.testing import CliRunner

from provenance.cli import app


def test_demo_runs_end_to_end_and_its_shards_hold_only_permitted_images(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(root)])
    assert result.exit_code == 0, result.stderr[-3000:]
    for step in ("ingest", "fetch", "signals refresh", "policy eval", "export", "optout add",
                 "audit", "exports rewrite", "report licenses", "log verify"):
        assert f" {step}" in result.stderr, step
    manifest = json.loads((root / "export-1" / "manifest.json").read_text())
    shards = sorted(str(p) for p in (root / "export-1").glob("*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False)]
    assert len(keys) == manifest["catalog"]["included"] > 0
    assert sum(s["samples"] for s in manifest["shards"]) == len(keys)
    rewritten = sorted(str(p) for p in (root / "export-2").glob("*.tar"))
    kept = {s["__key__"] for s in wds.WebDataset(rewritten, shardshuffle=False)}
    assert len(kept) == len(keys) - 1 and kept < set(keys)
    again = CliRunner().invoke(app, ["demo", "--dir", str(root)])
    assert again.exit_code == 0


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert (tmp_path / "precious.txt").exists()
