"""`provenance report ...` on a known catalog (built with `provenance ingest`, `export` and
`optout`, plus signal history inserted directly) with exact expected numbers, on SQLite and
PostgreSQL; formatters; the composition HTML page (structure, and a headless-Chromium render
when Chromium is installed)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import SignalObservation
from provenance.samples import image_bytes

POLICY = """\
name = "report-test"
description = "Tests only: CC0 and CC BY; no signal is required."

[licenses]
allow = ["cc0", "cc-by"]
attribution = true

[signals]
tokens = ["provenance-bot"]
count = []
"""
T0 = datetime(2026, 10, 1, tzinfo=UTC)
# seed: (license, url, caption, tags, size, format)
PHOTOS: dict[int, tuple[Any, ...]] = {
    1: ("CC-BY-4.0", "https://www.alpha.com/1.jpg", "one", ["cat"], (64, 48), "JPEG"),
    2: ("cc by 4.0", "https://img.alpha.com/2.jpg", None, ["Cat", "dog"], (600, 500), "JPEG"),
    3: ("CC0", "https://beta.org/3.png", None, None, (64, 48), "PNG"),
    4: ("ask the photographer", "https://beta.org/4.jpg", "four", None, (64, 48), "JPEG"),
    5: (None, None, "  ", None, (64, 48), "JPEG"),
}


def _signal(subject: str, kind: str, status: str, days: int, scope: str = "host"
            ) -> dict[str, Any]:
    return {"scope": scope, "subject": subject, "kind": kind, "status": status,
            "observed_at": T0 + timedelta(days=days)}


SIGNALS = [
    _signal("www.alpha.com", "robots", "allowed", 0),
    _signal("www.alpha.com", "robots", "reserved", 10),
    _signal("www.alpha.com", "robots", "reserved", 20),
    _signal("beta.org", "robots", "allowed", 0),
    _signal("beta.org", "robots", "allowed", 10),
    _signal("beta.org", "tdmrep", "unknown", 0),
    _signal("beta.org", "tdmrep", "allowed", 5),
    _signal("beta.org", "tdmrep", "unknown", 15),
    _signal("https://www.alpha.com/1.jpg", "x-robots-tag", "reserved", 3, scope="url"),
]


@pytest.fixture
def known(cli: Any, settings: Settings, tmp_path: Path) -> dict[str, Any]:
    photos = tmp_path / "photos"
    photos.mkdir()
    sizes = 0
    for seed, (lic, url, caption, tags, size, fmt) in PHOTOS.items():
        data = image_bytes(seed, size=size, fmt=fmt)
        sizes += len(data)
        (photos / f"p{seed}.{fmt.lower()}").write_bytes(data)
        side = {"license": lic, "url": url, "caption": caption, "tags": tags}
        (photos / f"p{seed}.json").write_text(json.dumps({k: v for k, v in side.items() if v}))
    manifest = tmp_path / "list.csv"
    manifest.write_text("url,license\nhttps://gamma.net/x.jpg,MIT\n"
                        "https://www.alpha.com/9.jpg,CC-BY-4.0\n")
    cli("ingest", str(photos), str(manifest), "--json")
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(SignalObservation.__table__.insert(), SIGNALS)
    engine.dispose()
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    export = json.loads(cli("export", "--policy", str(policy), "--out", str(tmp_path / "out"),
                            "--json").stdout)
    assert export["included"] == 3
    cli("optout", "add", "--sha256", _sha(1), "--requester", "Jane Doe", "--reference",
        "CASE-1", "--received-at", "2026-11-02T00:00:00Z", "--json")
    cli("optout", "add", "--domain", "beta.org", "--requester", "Beta Corp", "--reference",
        "CASE-2", "--received-at", "2026-11-03T00:00:00Z", "--json")
    cli("optout", "withdraw", "2")
    return {"bytes": sizes, "export_id": export["export_id"]}


def _sha(seed: int) -> str:
    size, fmt = PHOTOS[seed][4:]
    return hashlib.sha256(image_bytes(seed, size=size, fmt=fmt)).hexdigest()


def report(cli: Any, *args: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("report", *args, "--format", "json").stdout)
    return doc


def rows(section: list[dict[str, Any]], *cols: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in cols) for r in section]


def check_licenses_report(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "licenses")
    assert rows(doc["licenses"], "spdx_id", "family", "images", "sightings", "texts") == [
        ("CC-BY-4.0", "cc-by", 2, 3, 2), ("(no SPDX id)", "(unknown)", 2, 2, 1),
        ("CC0-1.0", "cc0", 1, 1, 1), ("MIT", "mit", 0, 1, 1)]
    assert rows(doc["variants"], "spdx_id", "text", "sightings", "images") == [
        ("CC-BY-4.0", "CC-BY-4.0", 2, 1), ("CC-BY-4.0", "cc by 4.0", 1, 1),
        ("CC0-1.0", "CC0", 1, 1), ("MIT", "MIT", 1, 0)]
    assert rows(doc["unrecognized"], "text", "sightings", "images") == [
        ("ask the photographer", 1, 1)]
    assert rows(doc["families"], "family", "sightings") == [("cc-by", 3), ("cc0", 1),
                                                             ("mit", 1)]
    scoped = report(cli, "licenses", "--export", str(known["export_id"]))
    assert rows(scoped["licenses"], "spdx_id", "images") == [("CC-BY-4.0", 2), ("CC0-1.0", 1)]


def check_domains_report(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "domains")
    assert rows(doc["domains"], "domain", "images", "sightings") == [
        ("alpha.com", 2, 3), ("beta.org", 2, 2), ("(no URL)", 1, 1), ("gamma.net", 0, 1)]
    table = cli("report", "domains").stdout
    assert table.index("alpha.com") < table.index("gamma.net")


def check_signals_report_and_as_of(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "signals")
    latest = [r for r in doc["latest"] if r["scope"] != "image"]
    assert rows(latest, "scope", "kind", "status", "subjects") == [
        ("host", "robots", "allowed", 1), ("host", "robots", "reserved", 1),
        ("host", "tdmrep", "unknown", 1), ("url", "x-robots-tag", "reserved", 1)]
    observed = {(r["kind"], r["status"]): r["observations"] for r in doc["observations"]}
    assert observed[("robots", "reserved")] == 2 and observed[("tdmrep", "unknown")] == 2
    assert rows(doc["changes"], "host", "kind", "changes", "status") == [
        ("beta.org", "tdmrep", 2, "unknown"), ("www.alpha.com", "robots", 1, "reserved")]
    assert doc["changes"][1]["since"] == "2026-10-11T00:00:00Z"
    then = report(cli, "signals", "--as-of", "2026-10-13T00:00:00Z")
    assert rows(then["changes"], "host", "kind", "changes", "status") == [
        ("beta.org", "tdmrep", 1, "allowed"), ("www.alpha.com", "robots", 1, "reserved")]
    hosts = [r for r in then["latest"] if r["scope"] == "host"]
    assert rows(hosts, "kind", "status", "subjects") == [
        ("robots", "allowed", 1), ("robots", "reserved", 1), ("tdmrep", "allowed", 1)]
    early = report(cli, "signals", "--as-of", "2026-09-01T00:00:00Z")
    assert early["latest"] == [] and early["changes"] == []


def check_optouts_register(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "optouts")
    assert rows(doc["requests"], "request_id", "requester", "reference", "scope_kind",
                "status", "matched_images", "exports", "exported_images",
                "pending_effect") == [
        (1, "Jane Doe", "CASE-1", "sha256", "active", 1, 1, 1, 1),
        (2, "Beta Corp", "CASE-2", "domain", "withdrawn", 2, 1, 1, 0)]
    first, second = doc["requests"]
    assert first["received_at"] == "2026-11-02T00:00:00Z" and first["withdrawn_at"] is None
    assert second["withdrawn_at"] is not None and second["recorded_at"] is not None
    assert dict(rows(doc["summary"], "measure", "value")) == {
        "requests": 2, "active": 1, "withdrawn": 1, "matched_images": 3, "pending_effect": 1}
    before = report(cli, "optouts", "--as-of", "2000-01-01T00:00:00Z")
    assert before["requests"] == []
    # As of the moment request 2 was recorded: both requests, the second not yet withdrawn.
    then = report(cli, "optouts", "--as-of", second["recorded_at"])
    assert rows(then["requests"], "request_id", "status", "withdrawn_at", "pending_effect") == [
        (1, "active", None, 1), (2, "active", None, 1)]


def check_exports_report(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "exports")
    assert rows(doc["exports"], "export_id", "policy", "samples", "shards", "revoked") == [
        (known["export_id"], "report-test", 3, 1, 1)]
    assert doc["exports"][0]["excluded"] >= 2
    cli("report", "exports", "--export", "999", "--format", "json", expect=2)
    cli("report", "signals", "--export", "1", expect=2)


def check_composition_report(cli: Any, known: dict[str, Any]) -> None:
    doc = report(cli, "composition")
    assert dict(rows(doc["summary"], "measure", "value")) == {
        "images": 5, "bytes": known["bytes"], "with_caption": 2, "without_caption": 3}
    assert rows(doc["sources"], "value", "images") == [("photos", 5)]
    assert rows(doc["domains"], "value", "images") == [("alpha.com", 2), ("beta.org", 2),
                                                        ("(no URL)", 1)]
    assert rows(doc["licenses"], "value", "images") == [("CC-BY-4.0", 2), ("(no SPDX id)", 2),
                                                         ("CC0-1.0", 1)]
    assert rows(doc["formats"], "value", "images") == [("jpeg", 4), ("png", 1)]
    assert rows(doc["pixels"], "value", "images") == [("< 0.25 MP", 4), ("0.25-1 MP", 1)]
    assert rows(doc["bytes"], "value", "images") == [("< 50 KB", 5)]
    assert rows(doc["tags"], "value", "images") == [("cat", 2), ("dog", 1)]
    scoped = report(cli, "composition", "--export", str(known["export_id"]))
    assert dict(rows(scoped["summary"], "measure", "value"))["images"] == 3
    assert rows(scoped["formats"], "value", "images") == [("jpeg", 2), ("png", 1)]


def check_csv_format(cli: Any, known: dict[str, Any]) -> None:
    text = cli("report", "domains", "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(text))) == [
        ["domain", "images", "sightings"], ["alpha.com", "2", "3"], ["beta.org", "2", "2"],
        ["(no URL)", "1", "1"], ["gamma.net", "0", "1"]]
    multi = list(csv.reader(io.StringIO(cli("report", "licenses", "--format", "csv").stdout)))
    assert ["unrecognized", "ask the photographer", "1", "1", "", ""] in multi
    cli("report", "domains", "--format", "xml", expect=2)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_composition_and_html_page(cli: Any, known: dict[str, Any], tmp_path: Path) -> None:
    check_composition_report(cli, known)
    page = tmp_path / "composition.html"
    cli("report", "composition", "--html", str(page))
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    assert "script" not in parser.tags and parser.external == []
    assert parser.tags.count("svg") == 7 and parser.tags.count("rect") >= 12
    text = " ".join(parser.text)
    assert "Composition of the whole catalog" in text and "ask" not in text
    assert "CC-BY-4.0" in text and "photos" in text
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: structure checked, render not")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


# One catalog per test keeps the suite fast; each test checks several reports on it.
def test_licenses_domains_and_csv(cli: Any, known: dict[str, Any]) -> None:
    check_licenses_report(cli, known)
    check_domains_report(cli, known)
    check_csv_format(cli, known)


def test_signals_optouts_and_exports(cli: Any, known: dict[str, Any]) -> None:
    check_signals_report_and_as_of(cli, known)
    check_optouts_register(cli, known)
    check_exports_report(cli, known)
    # The same flow left a verifiable record of what happened, in order.
    events = json.loads(cli("log", "show", "--limit", "50", "--json").stdout)["events"]
    assert [e["kind"] for e in events] == [
        "ingest", "export", "optout-request", "optout-request", "optout-withdrawn"]
    assert events[0]["payload"]["images_new"] == 5 and events[1]["payload"]["included"] == 3
    assert events[4]["payload"] == {"request_id": 2}
    assert json.loads(cli("log", "verify", "--json").stdout)["ok"] is True
