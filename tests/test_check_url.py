"""`provenance check-url`: offline with files and headers, online against 127.0.0.1
(pytest-httpserver), the CLI.md `--json` shape, and the fail-closed rule (nothing that was not
looked at is ever `allowed`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from typer.testing import CliRunner

from provenance.cli import app
from provenance.db.engine import make_engine
from provenance.db.models import SignalObservation
from provenance.domain import URL_LEVEL_KINDS

URL = "https://example.com/img/a.jpg"
KINDS = [str(k) for k in URL_LEVEL_KINDS]


def run(*args: str, expect: int = 0, db: str | None = None) -> Any:
    argv = ["--db", db] if db else []
    result = CliRunner().invoke(app, [*argv, "check-url", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.stdout + result.stderr
    return result


def check(*args: str, expect: int = 0, db: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run(*args, "--json", expect=expect, db=db).stdout)
    return doc


def by_kind(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["kind"]: s for s in doc["signals"]}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    robots = tmp_path / "robots.txt"
    robots.write_bytes(b"User-agent: MyBot\r\nDisallow: /img/\r\n\r\nUser-agent: *\r\nAllow: /\r\n")
    tdmrep = tmp_path / "tdmrep.json"
    # Example from the W3C TDMRep final report (2024-05-10), section "tdmrep.json".
    tdmrep.write_text(
        '[{"location": "/img/*", "tdm-reservation": 1, '
        '"tdm-policy": "https://provider.com/policies/policy.json"}]'
    )
    aitxt = tmp_path / "ai.txt"
    aitxt.write_text("User-agent: *\nDisallow: /private/\n")
    return {"robots": robots, "tdmrep": tdmrep, "aitxt": aitxt}


def test_offline_json_shape_is_cli_md(files: dict[str, Path]) -> None:
    doc = check(
        URL, "--user-agent", "MyBot", "--offline",
        "--robots-file", str(files["robots"]), "--tdmrep-file", str(files["tdmrep"]),
        "--aitxt-file", str(files["aitxt"]), "--header", "X-Robots-Tag: noindex",
        "--header", "Content-Usage: train-ai=n",
    )  # fmt: skip
    assert list(doc) == ["url", "user_agent", "verdict", "signals"]
    assert doc["url"] == URL and doc["user_agent"] == "MyBot"
    assert doc["verdict"] == "reserved"
    assert [s["kind"] for s in doc["signals"]] == KINDS
    for sig in doc["signals"]:
        assert {"kind", "status", "detail", "source"} <= set(sig)
        assert sig["status"] in ("allowed", "reserved", "unknown")
    sig = by_kind(doc)
    assert sig["robots"]["status"] == "reserved"
    assert sig["robots"]["source"] == str(files["robots"])
    assert sig["robots"]["tokens"]["mybot"] == "reserved"
    assert sig["robots"]["tokens"]["gptbot"] == "allowed"
    assert sig["tdmrep"]["status"] == "reserved"
    assert sig["tdmrep"]["reservation"] == 1
    assert sig["tdmrep"]["policy"] == "https://provider.com/policies/policy.json"
    assert sig["x-robots-tag"]["status"] == "allowed"  # noindex is not an AI opt-out
    assert sig["ai-txt"]["status"] == "allowed"
    assert sig["content-usage"]["status"] == "reserved"
    assert sig["content-signal"]["status"] == "allowed"
    assert sig["rsl"]["status"] == "allowed"


def test_offline_with_nothing_given_is_never_allowed() -> None:
    doc = check(URL, "--user-agent", "MyBot", "--offline")
    assert doc["verdict"] == "unknown"
    assert {s["status"] for s in doc["signals"]} == {"unknown"}
    assert all("not checked" in s["detail"] for s in doc["signals"] if s["kind"] != "tdmrep")
    assert by_kind(doc)["tdmrep"]["reservation"] is None


def test_offline_header_only(files: dict[str, Path]) -> None:
    doc = check(URL, "--user-agent", "MyBot", "--offline", "--header", "x-robots-tag: NoAI")
    sig = by_kind(doc)
    assert sig["x-robots-tag"]["status"] == "reserved"
    assert sig["robots"]["status"] == "unknown"
    assert sig["content-usage"]["status"] == "unknown"  # robots.txt not checked
    assert doc["verdict"] == "reserved"


def test_user_agent_decides_status_default_tokens_are_detail(tmp_path: Path) -> None:
    robots = tmp_path / "robots.txt"
    robots.write_text("User-agent: GPTBot\nDisallow: /\n")
    doc = check(URL, "--user-agent", "MyBot/2.1 (+https://x.test)", "--offline",
                "--robots-file", str(robots))  # fmt: skip
    robots_sig = by_kind(doc)["robots"]
    assert robots_sig["status"] == "allowed"
    assert robots_sig["tokens"]["gptbot"] == "reserved"
    gpt = by_kind(check(URL, "--user-agent", "GPTBot", "--offline", "--robots-file", str(robots)))
    assert gpt["robots"]["status"] == "reserved"


def test_fail_on_reserved_exit_codes(files: dict[str, Path]) -> None:
    args = [URL, "--user-agent", "MyBot", "--offline", "--robots-file", str(files["robots"])]
    run(*args, "--fail-on-reserved", expect=1)
    run(*args)  # without the flag a reserved verdict is still exit 0
    other = "https://example.com/page.html"
    run(other, "--user-agent", "MyBot", "--offline", "--fail-on-reserved")  # unknown: exit 0


def test_bad_input_exit_2(tmp_path: Path) -> None:
    run(URL, "--user-agent", "MyBot", "--offline", "--robots-file", str(tmp_path / "no"), expect=2)
    run(URL, "--user-agent", "MyBot", "--offline", "--header", "no colon", expect=2)
    run("ftp://example.com/a.jpg", "--user-agent", "MyBot", "--offline", expect=2)


def serve_site(server: HTTPServer) -> None:
    server.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /private/\nContent-Signal: ai-train=no\n"
    )
    server.expect_request("/ai.txt").respond_with_data("", status=404)
    server.expect_request("/.well-known/tdmrep.json").respond_with_data("", status=404)
    server.expect_request("/img/a.jpg", method="HEAD").respond_with_data(
        "", headers={"Content-Usage": "train-ai=n", "X-Robots-Tag": "otherbot: noai"}
    )


def test_online_without_a_catalog(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_site(httpserver)
    missing = tmp_path / "nowhere" / "catalog.db"
    url = httpserver.url_for("/img/a.jpg")
    doc = check(url, "--user-agent", "MyBot", "--allow-private", db=f"sqlite:///{missing}")
    sig = by_kind(doc)
    assert sig["robots"]["status"] == "allowed"
    assert sig["robots"]["source"] == httpserver.url_for("/robots.txt")
    assert sig["content-signal"]["status"] == "reserved"
    assert sig["content-usage"]["status"] == "reserved"
    assert sig["x-robots-tag"]["status"] == "allowed"
    assert sig["ai-txt"]["status"] == "allowed"
    assert sig["tdmrep"]["status"] == "allowed" and sig["tdmrep"]["reservation"] is None
    assert doc["verdict"] == "reserved"
    assert not missing.exists()


def test_online_records_into_an_existing_catalog(cli: Any, httpserver: HTTPServer) -> None:
    serve_site(httpserver)
    url = httpserver.url_for("/img/a.jpg")
    cli("check-url", url, "--user-agent", "MyBot", "--allow-private", "--json")
    engine = make_engine(cli.settings.db_url)
    table = SignalObservation.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.scope, table.c.kind, table.c.status)).all()
    engine.dispose()
    url_kinds = {(k, s) for scope, k, s in rows if scope == "url"}
    assert ("content-usage", "reserved") in url_kinds
    assert ("x-robots-tag", "allowed") in url_kinds
    assert {k for scope, k, _ in rows if scope == "host"} >= {"robots", "ai-txt", "tdmrep"}


def test_online_head_refused_falls_back_to_ranged_get(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    httpserver.expect_request("/img/a.jpg", method="HEAD").respond_with_data("", status=405)
    httpserver.expect_request("/img/a.jpg", method="GET").respond_with_data(
        b"\xff\xd8", status=206, headers={"X-Robots-Tag": "noimageai"}
    )
    doc = check(httpserver.url_for("/img/a.jpg"), "--user-agent", "MyBot", "--allow-private")
    assert by_kind(doc)["x-robots-tag"]["status"] == "reserved"
    ranged = [r for r, _ in httpserver.log if r.method == "GET" and r.path == "/img/a.jpg"]
    assert ranged and ranged[0].headers.get("Range") == "bytes=0-0"


def test_online_refuses_private_addresses_by_default(httpserver: HTTPServer) -> None:
    serve_site(httpserver)
    doc = check(httpserver.url_for("/img/a.jpg"), "--user-agent", "MyBot")
    sig = by_kind(doc)
    assert sig["robots"]["status"] == "unknown"
    assert "unsafe address" in sig["robots"]["detail"]
    assert "unsafe address" in sig["x-robots-tag"]["detail"]
    assert doc["verdict"] == "unknown"
    assert httpserver.log == []


def test_table_output_without_json(files: dict[str, Path]) -> None:
    result = run(URL, "--user-agent", "MyBot", "--offline", "--robots-file", str(files["robots"]))
    assert "reserved" in result.stdout and "robots" in result.stdout


# ------------------------------------------------------------------------------ evaluate (pure)


def test_url_level_signals_fail_closed_by_input() -> None:
    from provenance.signals.evaluate import url_level_signals, verdict
    from provenance.signals.robots import parse_robots

    robots = parse_robots("User-agent: *\nAllow: /\nContent-Usage: train-ai=y\n", "r")
    kinds = URL_LEVEL_KINDS
    nothing = url_level_signals(
        URL, ["mybot"], robots=None, aitxt=None, tdmrep=None, rsl_docs=None, headers=None
    )
    assert [s.kind for s in nothing] == list(kinds)
    assert {s.status.value for s in nothing} == {"unknown"}
    assert verdict(nothing).value == "unknown"
    host_only = {
        s.kind.value: s
        for s in url_level_signals(
            URL, ["mybot"], robots=robots, aitxt=None, tdmrep=None, rsl_docs={}, headers=None
        )
    }
    assert host_only["robots"].status.value == "allowed"
    assert host_only["x-robots-tag"].status.value == "unknown"
    assert host_only["content-usage"].status.value == "allowed"
    assert "response headers not checked" in host_only["content-usage"].detail
    assert host_only["rsl"].status.value == "allowed"
    assert "response headers not checked" in host_only["rsl"].detail
    headers_only = {
        s.kind.value: s
        for s in url_level_signals(
            URL,
            ["mybot"],
            robots=None,
            aitxt=None,
            tdmrep=None,
            rsl_docs={},
            headers=[("Content-Usage", "train-ai=y")],
        )
    }
    assert headers_only["content-usage"].status.value == "unknown"  # robots.txt not checked
    assert headers_only["rsl"].status.value == "unknown"
    reserved = url_level_signals(
        URL, ["mybot"], robots=None, aitxt=None, tdmrep=None, rsl_docs={},
        headers=[("Content-Usage", "train-ai=n")],
    )  # fmt: skip
    assert {s.kind.value: s.status.value for s in reserved}["content-usage"] == "reserved"


def test_rsl_named_but_unread_is_unknown_and_read_is_evaluated() -> None:
    from provenance.signals.evaluate import url_level_signals
    from provenance.signals.robots import parse_robots

    robots = parse_robots("User-agent: *\nAllow: /\nLicense: https://example.com/l.xml\n", "r")
    # RSL 1.0 specification (rslstandard.org), "prohibits" example for AI training.
    xml = (
        b'<rsl xmlns="https://rslstandard.org/rsl"><content url="/">'
        b'<license><prohibits type="usage">ai-train</prohibits></license></content></rsl>'
    )

    def rsl(docs: dict[str, bytes]) -> str:
        sigs = url_level_signals(
            URL, ["mybot"], robots=robots, aitxt=None, tdmrep=None, rsl_docs=docs, headers=[]
        )
        return sigs[-1].status.value

    assert rsl({}) == "unknown"
    assert rsl({"https://example.com/l.xml": xml}) == "reserved"
