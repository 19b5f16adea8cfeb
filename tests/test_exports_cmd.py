"""`exports revocations` and `exports rewrite` after an opt-out arrives, and an unfinished
export that may no longer be completed as planned. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import Base
from provenance.domain import utcnow
from provenance.services.export import CRASH_AFTER_ENV
from tests.test_export import (
    PERMITTED,
    build_catalog,
    export_json,
    read_samples,
    run_summary,
)


def opt_out(settings: Settings, sha256: str, requester: str = "Creator 6") -> int:
    """Record an active sha256-scope request and its match, as `optout add` would."""
    now = utcnow()
    tables = Base.metadata.tables
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        request_id = conn.execute(
            insert(tables["optout_requests"]).values(
                requester=requester, received_at=now, recorded_at=now, scope_kind="sha256",
                scope_value=sha256, status="active", reference=f"test-{sha256[:8]}",
            ).returning(tables["optout_requests"].c.id)
        ).scalar_one()
        conn.execute(insert(tables["optout_matches"]).values(
            request_id=request_id, image_sha256=sha256, how="sha256", matched_at=now))
    engine.dispose()
    return int(request_id)


def test_revocations_and_rewrite_after_an_optout(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    keys = build_catalog(settings, tmp_path / "src")
    old = export_json(cli, policy_file, tmp_path / "v1", "--shard-size", "4")
    none = json.loads(cli("exports", "revocations", str(old["export_id"]), "--json").stdout)
    assert none == {"export_id": old["export_id"], "revoked": []}

    request_id = opt_out(settings, keys[6])
    doc = json.loads(cli("exports", "revocations", str(old["export_id"]), "--json").stdout)
    assert doc["revoked"] == [{"key": keys[6], "reason": "opted-out", "request_id": request_id}]
    # With another policy given explicitly, the same opt-out is found.
    other = json.loads(cli("exports", "revocations", str(old["export_id"]), "--policy",
                           str(policy_file), "--json").stdout)
    assert [r["key"] for r in other["revoked"]] == [keys[6]]

    rewrite = cli("exports", "rewrite", str(old["export_id"]), "--out", str(tmp_path / "v2"),
                  "--json")
    new = json.loads(rewrite.stdout)
    assert run_summary(rewrite.stderr) == ("complete", 2)
    assert new["export_id"] != old["export_id"]
    assert new["excluded"] == {"revoked:opted-out": 1}
    samples = read_samples([s["path"] for s in new["shards"]])
    assert {s["__key__"] for s in samples} == {keys[i] for i in PERMITTED - {6}}
    shown = json.loads(cli("exports", "show", str(new["export_id"]), "--json").stdout)
    assert shown["parent_export_id"] == old["export_id"]
    assert shown["policy_sha256"] == old_policy_sha(cli, old["export_id"])
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    assert manifest["parent_export_id"] == old["export_id"]
    # The rewrite is itself clean, and a second run writes nothing.
    clean = json.loads(cli("exports", "revocations", str(new["export_id"]), "--json").stdout)
    assert clean["revoked"] == []
    again = cli("exports", "rewrite", str(old["export_id"]), "--out", str(tmp_path / "v2"),
                "--json")
    assert json.loads(again.stdout)["export_id"] == new["export_id"]
    assert run_summary(again.stderr) == ("complete", 0)


def old_policy_sha(cli: Any, export_id: int) -> str:
    return str(json.loads(cli("exports", "show", str(export_id), "--json").stdout)["policy_sha256"])


def test_unfinished_export_is_not_completed_with_a_revoked_image(
    cli: Any, settings: Settings, tmp_path: Path, policy_file: Path
) -> None:
    keys = build_catalog(settings, tmp_path / "src")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "provenance", "--db", settings.db_url,
            "--store", str(settings.store_dir), "export", "--policy", str(policy_file),
            "--out", str(out), "--shard-size", "2"]
    crashed = subprocess.run(argv, env={**os.environ, CRASH_AFTER_ENV: "1"},
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 137
    last = max(keys[i] for i in PERMITTED)  # sorted last, so in a shard not yet written
    opt_out(settings, last)
    result = cli("export", "--policy", str(policy_file), "--out", str(out), "--shard-size", "2",
                 expect=3)
    assert "no longer permitted" in result.stderr
    assert not (out / "manifest.json").exists()
    assert len(list(out.glob("*.tar"))) == 1


def test_unknown_export_id_is_bad_input(cli: Any) -> None:
    result = cli("exports", "show", "999", expect=2)
    assert "no export with id 999" in result.stderr
    cli("exports", "revocations", "999", "--json", expect=2)
