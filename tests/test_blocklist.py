"""Crawl blocklists: parsing (lines and CSV), `blocklist import/list` on SQLite and PostgreSQL,
and `fetch` never contacting an imported list's domain or prefix (asserted on the server log)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from provenance.blocklist import parse_blocklist, parse_domain
from provenance.db.engine import make_engine
from provenance.db.models import FetchAttempt
from provenance.samples import image_bytes
from tests.conftest import Cli

LINES = """\
# Court order 123/2026, persistently infringing sites
example.com
*.Piracy.Example.org   # wildcard form
.mirror.example.net
https://host.example.net/gallery/
bad domain
ftp://x.org/
example.com
"""


def test_lines_keep_good_entries_and_report_bad_lines() -> None:
    parsed = parse_blocklist(LINES)
    assert parsed.entries == [
        ("domain", "example.com"),
        ("domain", "mirror.example.net"),
        ("domain", "piracy.example.org"),
        ("url-prefix", "https://host.example.net/gallery/"),
    ]
    assert [(b.line, b.text) for b in parsed.bad] == [(6, "bad domain"), (7, "ftp://x.org/")]
    assert "URL prefix" in parsed.bad[0].reason


def test_csv_columns_kinds_and_bad_rows() -> None:
    text = ("# exported from the authority's register\n"
            "value,kind,court\n"
            "blocked.example,domain,A\n"
            "https://a.example/x/,url-prefix,B\n"
            "https://c.example/,domain,C\n"
            "d.example,shelf,D\n")
    parsed = parse_blocklist(text)
    assert parsed.entries == [("domain", "blocked.example"), ("url-prefix", "https://a.example/x/")]
    assert [b.line for b in parsed.bad] == [5, 6]
    assert "kind must be one of" in parsed.bad[1].reason
    other = parse_blocklist("domain,url\nfoo.example,\n,http://bar.example/p\n", csv_format=True)
    assert other.entries == [("domain", "foo.example"), ("url-prefix", "http://bar.example/p")]


@pytest.mark.parametrize(
    "text", ["localhost", "exa mple.com", "-a.com", "a..com", "", "x" * 64 + ".com"]
)
def test_domains_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_domain(text)


def test_domains_normalized() -> None:
    assert parse_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert parse_domain("127.0.0.1") == "127.0.0.1"


def test_import_is_idempotent_per_name_and_version(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    path = tmp_path / "list.txt"
    path.write_text(LINES)
    first = json.loads(cli("blocklist", "import", str(path), "--name", "court", "--version",
                           "2026-01", "--source", "Court order 123/2026", "--json").stdout)
    assert first["entries"] == 4 and first["domains"] == 3 and first["url_prefixes"] == 1
    assert first["bad"] == 2 and first["already_imported"] is False
    assert first["bad_lines"][0] == {"line": 6, "text": "bad domain",
                                     "reason": first["bad_lines"][0]["reason"]}
    again = json.loads(cli("blocklist", "import", str(path), "--name", "court", "--version",
                           "2026-01", "--json").stdout)
    assert again["already_imported"] is True and again["list_id"] == first["list_id"]
    path.write_text("other.example\n")
    changed = cli("blocklist", "import", str(path), "--name", "court", "--version", "2026-01",
                  expect=2)
    assert "new --version" in changed.stderr
    cli("blocklist", "import", str(path), "--name", "court", "--version", "2026-02")
    listed = json.loads(cli("blocklist", "list", "--json").stdout)["blocklists"]
    assert [(b["name"], b["version"], b["domains"], b["url_prefixes"], b["source"])
            for b in listed] == [("court", "2026-01", 3, 1, "Court order 123/2026"),
                                 ("court", "2026-02", 1, 0, None)]
    table = cli("blocklist", "list").stdout
    assert "2026-02" in table


def test_import_refuses_unreadable_or_empty_files(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    missing = cli("blocklist", "import", str(tmp_path / "nope.txt"), "--name", "a",
                  "--version", "1", expect=2)
    assert "cannot read blocklist" in missing.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\nnot a domain\n")
    assert "no usable entry" in cli("blocklist", "import", str(empty), "--name", "a",
                                    "--version", "1", expect=2).stderr


def test_fetch_never_contacts_an_imported_list(cli: Cli, tmp_path: Path,
                                               httpserver: HTTPServer) -> None:
    cli("init")
    for path in ("/robots.txt", "/ai.txt", "/.well-known/tdmrep.json"):
        httpserver.expect_request(path).respond_with_data("", status=404)
    jpeg = image_bytes(7)
    httpserver.expect_request("/ok.jpg").respond_with_data(jpeg, content_type="image/jpeg")
    urls = [httpserver.url_for("/ok.jpg"), httpserver.url_for("/pirated/a.jpg"),
            "http://cdn.blocked.example/b.jpg"]
    manifest = tmp_path / "m.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "license"])
        writer.writerows([u, "CC0-1.0"] for u in urls)
    cli("ingest", str(manifest), "--workers", "1")
    listing = tmp_path / "court.txt"
    listing.write_text(f"blocked.example\n{httpserver.url_for('/pirated/')}\n")
    cli("blocklist", "import", str(listing), "--name", "court", "--version", "v7")

    out = json.loads(cli("fetch", "--allow-private", "--json").stdout)

    assert out["fetched"] == 1 and out["skipped_blocklisted"] == 2
    paths = [req.path for req, _ in httpserver.log]
    assert "/ok.jpg" in paths and not any(p.startswith("/pirated/") for p in paths)
    engine = make_engine(cli.settings.db_url)
    with engine.connect() as conn:
        reasons = dict(conn.execute(select(FetchAttempt.url, FetchAttempt.error)).all())
    engine.dispose()
    assert reasons["http://cdn.blocked.example/b.jpg"] == (
        "blocklisted by court v7 (domain blocked.example)")
