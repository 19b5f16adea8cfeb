"""`report training-summary` on a generated catalog with known numbers (SQLite and PostgreSQL),
the template's arithmetic at its edges, bad about files, versions and what changed.

Template: European Commission, Explanatory Notice and Template for the Public Summary of
Training Content, 24 July 2025 (C(2025) 8311): sections 1.1-3.3, image size bands (1.3) and the
top-domain rule (2.3: top 10 % by size, SMEs 5 % or 1,000, whichever is lower)."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provenance.db.engine import make_engine
from provenance.db.models import Event
from provenance.errors import BadInput
from provenance.summary.compute import what_changed
from provenance.summary.template import (
    BAND_LARGE,
    BAND_MEDIUM,
    BAND_SMALL,
    SECTIONS,
    default_rule,
    image_size_band,
    override_rule,
)
from tests.conftest import Cli
from tests.summary_catalog import ABOUT, UA, build


@pytest.mark.parametrize(("domains", "sme", "expected"), [
    (0, False, 0), (1, False, 1), (9, False, 1), (10, False, 1), (11, False, 2),
    (20_000, False, 2_000), (20_001, False, 2_001),
    (9, True, 1), (20, True, 1), (21, True, 2), (20_000, True, 1_000), (19_980, True, 999),
    (1_000_000, True, 1_000),
])
def test_top_domain_rule_edges(domains: int, sme: bool, expected: int) -> None:
    assert default_rule().count(domains, sme) == expected


def test_rule_parameters_name_their_source_and_can_be_overridden() -> None:
    rule = default_rule()
    assert "C(2025) 8311" in rule.source and rule.to_json()["share_percent"] == 10
    stricter = override_rule(rule, {"share_percent": 20, "sme_cap": 10}, "about.toml")
    assert stricter.count(11, False) == 3 and stricter.count(20_000, True) == 10
    assert stricter.to_json()["overridden"] == ["share_percent", "sme_cap"]
    with pytest.raises(BadInput, match=r"top_domains\.bogus"):
        override_rule(rule, {"bogus": 1}, "about.toml")
    with pytest.raises(BadInput, match="number in"):
        override_rule(rule, {"share_percent": 0}, "about.toml")


@pytest.mark.parametrize(("count", "band"), [
    (0, BAND_SMALL), (999_999, BAND_SMALL), (1_000_000, BAND_MEDIUM),
    (1_000_000_000, BAND_MEDIUM), (1_000_000_001, BAND_LARGE),
])
def test_size_bands_at_their_boundaries(count: int, band: str) -> None:
    assert image_size_band(count) == band


def test_what_changed_names_new_and_dropped_domains() -> None:
    before = {"version": 1, "images": 10, "total_bytes": 100, "domains_total": 3,
              "top_domains": ["a.example", "b.example"], "sources": {"crawl": 10}}
    after = {"images": 12, "total_bytes": 90, "domains_total": 4,
             "top_domains": ["c.example", "a.example"], "sources": {"crawl": 11, "new": 1}}
    change = what_changed(before, after)
    assert change["new_top_domains"] == ["c.example"]
    assert change["dropped_top_domains"] == ["b.example"]
    assert change["images"] == {"before": 10, "after": 12, "change": 2}
    assert change["total_bytes"]["change"] == -10
    assert change["sources"] == [
        {"source_name": "crawl", "before": 10, "after": 11, "change": 1},
        {"source_name": "new", "before": 0, "after": 1, "change": 1}]


@pytest.fixture
def catalog(cli: Cli, tmp_path: Path) -> Path:
    cli("init")
    engine = make_engine(cli.settings.db_url)
    with engine.begin() as conn:
        build(conn)
    engine.dispose()
    about = tmp_path / "about.toml"
    about.write_text(ABOUT)
    return about


def summarise(cli: Cli, about: Path, out: Path, *extra: str, expect: int = 0) -> Any:
    result = cli("report", "training-summary", "--export", "1", "--about", str(about),
                 "--out", str(out), "--json", *extra, expect=expect)
    return json.loads(result.stdout) if expect == 0 else result


def test_every_computed_field(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    doc = summarise(cli, catalog, tmp_path / "out")
    s = {num: section["fields"] for num, section in doc["sections"].items()}
    assert list(doc["sections"]) == [num for num, _ in SECTIONS]
    assert doc["version"] == 1 and doc["what_changed"] is None
    assert s["1.3"]["image_count"] == 19 and s["1.3"]["total_bytes"] == 74_100
    assert s["1.3"]["image_size_band"] == BAND_SMALL
    assert s["1.3"]["images_with_caption"] == 3 and s["1.3"]["modalities"] == ["Image", "Text"]
    assert s["1.3"]["latest_acquisition"] == "03/2026"
    assert s["1.3"]["training_continues"] == "Yes"
    assert [(r["source_name"], r["images"], r["share_percent"]) for r in s["2.1"]["sources"]] == [
        ("laion-sub", 5, 26.32)]
    assert s["2.1"]["datasets"][0] == {
        "name": "LAION subset", "version": "2021", "url": "https://laion.example/",
        "source_name": "laion-sub", "images": 5, "share_percent": 26.32, "description": None}
    assert s["2.2"]["licensed"]["images"] == 3 and s["2.2"]["licensed"]["used"] == "Yes"
    assert s["2.2"]["licensed"]["description"].startswith("TO-DO")
    assert s["2.2"]["private_third_party"]["used"] == "No"
    assert s["2.5"]["sources"][0]["images"] == 1 and s["2.4"]["used"] == "No"
    crawl = s["2.3"]
    assert crawl["crawled_images"] == 11 and crawl["purposes"] == ["training ExampleVision"]
    assert crawl["crawlers"] == [{"user_agent": UA, "token": "provenance-bot", "images": 11,
                                  "period": "02/2026-03/2026"}]
    assert crawl["own_crawl_sources"][0]["share_percent"] == 57.89
    top = crawl["top_domains"]
    assert (top["domains_total"], top["listed"]) == (11, 2)
    assert [(d["domain"], d["bytes"], d["share_of_crawled_bytes_percent"])
            for d in top["domains"]] == [("site10.example", 11_000, 16.67),
                                         ("site9.example", 10_000, 15.15)]
    assert "top 10 % of all crawled domain names" in top["rule"]
    assert top["parameters"]["source"].startswith("European Commission")


def test_processing_sections(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    doc = summarise(cli, catalog, tmp_path / "out")
    s = {num: section["fields"] for num, section in doc["sections"].items()}
    rights = s["3.1"]
    assert rights["signals"] == [
        {"signal": "robots", "observations": {"allowed": 1, "reserved": 2},
         "images_excluded_reserved": 3, "images_excluded_unknown": 0, "images_excluded_stale": 1},
        {"signal": "tdmrep", "observations": {"unknown": 1}, "images_excluded_reserved": 0,
         "images_excluded_unknown": 1, "images_excluded_stale": 0}]
    assert rights["urls_not_fetched"] == {"skipped-reserved": 2, "skipped-unknown": 0,
                                          "skipped-optout": 0, "skipped-blocklisted": 1}
    assert rights["optout_requests"] == [
        {"scope": "domain", "status": "active", "requests": 1},
        {"scope": "url", "status": "withdrawn", "requests": 1}]
    assert rights["images_excluded_opted_out"] == 2 and rights["images_revoked_since"] == 1
    assert rights["policies"][0]["tokens"] == ["provenance-bot", "gptbot"]
    assert rights["policies"][0]["evidence_max_age_days"] == {"robots": 30}
    assert rights["code_of_practice_signatory"].startswith("TO-DO")
    assert s["3.2"]["blocklists"] == [{"name": "court", "version": "v1",
                                       "source": "Court order 1",
                                       "imported_at": "2026-01-15T00:00:00Z", "entries": 2}]
    assert s["3.2"]["images_excluded_blocklisted"] == 1
    assert s["3.3"]["exclusions_by_reason"] == {"license-unknown": 5, "near-duplicate": 4}
    assert s["3.3"]["near_duplicates_removed"] == 4
    assert s["3.3"]["licenses"] == [
        {"spdx": "CC-BY-4.0", "images": 15, "share_percent": 78.95},
        {"spdx": "unknown", "images": 3, "share_percent": 15.79},
        {"spdx": "CC0-1.0", "images": 1, "share_percent": 5.26}]


def test_files_todos_and_csv(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = summarise(cli, catalog, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "top-domains.csv", "training-summary.html", "training-summary.json",
        "training-summary.md"]
    assert json.loads((out / "training-summary.json").read_text()) == doc
    assert "1.1 representative_name" in doc["todo"] and "1.2 placed_on_market" in doc["todo"]
    md = (out / "training-summary.md").read_text()
    assert "### 2.3 Data crawled and scraped from online sources" in md
    assert "**TO-DO: date the model is placed on the Union market**" in md
    with (out / "top-domains.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [["rank", "domain", "images", "bytes", "share_of_crawled_bytes_percent"],
                    ["1", "site10.example", "1", "11000", "16.67"],
                    ["2", "site9.example", "1", "10000", "15.15"]]


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.todo = 0
        self.external: list[str] = []
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and (a.get("id") or "").startswith("s"):
            self.sections.append((a["id"] or "")[1:])
        if a.get("class") == "todo":
            self.todo += 1
        if tag == "table":
            self.tables += 1
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(str(a[key]))


def test_html_is_self_contained_in_template_order(cli: Cli, catalog: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    doc = summarise(cli, catalog, out)
    parser = _Structure()
    parser.feed((out / "training-summary.html").read_text())
    assert parser.sections == [num for num, _ in SECTIONS]
    assert parser.todo >= len(doc["todo"]) and parser.external == []
    assert parser.tables >= 5


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: "surprise = 1\n" + t, "unknown key(s) in the top level: surprise"),
    (lambda t: t.replace('version = "1.0"\n', ""), "missing required key(s) in [model]: version"),
    (lambda t: t.replace('"stock" = "licensed"', '"stock" = "bought"'), "'bought'"),
    (lambda t: t.replace('"synth" = "synthetic"\n', ""), "classify these source names"),
    (lambda t: t + "\n[crawler.extra]\n", "unknown key(s) in [crawler]: extra"),
    (lambda t: "[provider\n", "not valid UTF-8 TOML"),
])
def test_bad_about_files_exit_2_naming_the_key(cli: Cli, catalog: Path, tmp_path: Path,
                                               edit: Any, message: str) -> None:
    catalog.write_text(edit(ABOUT))
    result = summarise(cli, catalog, tmp_path / "out", expect=2)
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_or_missing_export_exits_2(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    result = cli("report", "training-summary", "--export", "7", "--about", str(catalog),
                 "--out", str(tmp_path / "o"), expect=2)
    assert "no export with id 7" in result.stderr


def test_generations_are_versioned_and_recorded(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    summarise(cli, catalog, tmp_path / "v1")
    second = summarise(cli, catalog, tmp_path / "v2")
    assert second["version"] == 2
    changed = second["what_changed"]
    assert changed["previous_version"] == 1 and changed["new_top_domains"] == []
    assert changed["images"] == {"before": 19, "after": 19, "change": 0}
    assert summarise(cli, catalog, tmp_path / "v3", "--previous", "1")["what_changed"][
        "previous_version"] == 1
    bad = summarise(cli, catalog, tmp_path / "v4", "--previous", "9", expect=2)
    assert "no recorded summary version 9" in bad.stderr
    engine = make_engine(cli.settings.db_url)
    with engine.connect() as conn:
        payloads = [json.loads(p) for p in conn.execute(
            select(Event.payload).where(Event.kind == "training-summary").order_by(Event.seq))
            .scalars()]
    engine.dispose()
    assert [p["version"] for p in payloads] == [1, 2, 3]
    assert payloads[0]["exports"] == [1] and payloads[0]["top_domains"] == [
        "site10.example", "site9.example"]
    assert len(payloads[0]["about_sha256"]) == 64
    assert set(payloads[0]["files"]) == {"training-summary.json", "training-summary.md",
                                         "training-summary.html", "top-domains.csv"}
    cli("log", "verify")


def test_sme_rule_applies(cli: Cli, catalog: Path, tmp_path: Path) -> None:
    catalog.write_text(ABOUT.replace("sme = false", "sme = true"))
    top = summarise(cli, catalog, tmp_path / "o")["sections"]["2.3"]["fields"]["top_domains"]
    assert top["listed"] == 1 and top["sme"] is True and "(SME)" in top["rule"]
