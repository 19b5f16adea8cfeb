"""Host documents over real HTTP on 127.0.0.1 (pytest-httpserver), their catalog cache, and
`signals refresh` / `signals history` on SQLite and PostgreSQL.

robots.txt status handling follows RFC 9309 section 2.3.1 (4xx: allow all; 5xx and network
errors: unreachable, i.e. unknown here; at most 5 redirects; parse at least 500 KiB).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, func, select
from werkzeug import Request, Response

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import Sighting, SignalObservation
from provenance.db.signal_store import history, latest_observations
from provenance.domain import Scope, SignalKind, SignalStatus
from provenance.errors import BadInput
from provenance.net import SafeHttp
from provenance.services.host_signals import HostDocCache, HostDocs, host_documents, origin_of
from provenance.services.signals_refresh import parse_duration
from provenance.signals.robots import MAX_ROBOTS_BYTES

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TOKENS = ("mybot", "gptbot", "ccbot")


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    eng = make_engine(catalog_url)
    yield eng
    eng.dispose()


@pytest.fixture
def http() -> Iterator[SafeHttp]:
    with SafeHttp("provenance-test/1.0", allow_private=True, timeout=1.0) as client:
        yield client


def origin(server: HTTPServer) -> str:
    return origin_of(server.url_for("/"))


def requests_for(server: HTTPServer, path: str) -> int:
    return sum(1 for request, _ in server.log if request.path == path)


def docs_for(engine: Engine, http: SafeHttp, server: HTTPServer, now: datetime = T0) -> HostDocs:
    with engine.begin() as conn:
        return host_documents(conn, http, origin(server), now, tokens=TOKENS)


def robots_status(docs: HostDocs, path: str = "/img/a.jpg") -> tuple[SignalStatus, str]:
    sig = docs.signals_for(docs.origin + path, TOKENS)[0]
    assert sig.kind is SignalKind.ROBOTS
    return sig.status, sig.detail


def serve_robots(server: HTTPServer, body: bytes | str, status: int = 200) -> None:
    server.expect_request("/robots.txt").respond_with_data(body, status=status)


# ------------------------------------------------------------------------------ statuses


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, SignalStatus.ALLOWED),
        (403, SignalStatus.ALLOWED),  # RFC 9309: 4xx incl. 401/403 means "unavailable"
        (500, SignalStatus.UNKNOWN),
        (503, SignalStatus.UNKNOWN),
    ],
)
def test_robots_http_status(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer, status: int, expected: SignalStatus
) -> None:
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n", status=status)
    got, detail = robots_status(docs_for(engine, http, httpserver))
    assert got is expected, detail


def test_robots_200_disallow_and_crlf_bom(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, b"\xef\xbb\xbfUser-agent: GPTBot\r\nDisallow: /img/\r\n")
    docs = docs_for(engine, http, httpserver)
    sig = docs.signals_for(docs.origin + "/img/a.jpg", TOKENS)[0]
    assert sig.status is SignalStatus.RESERVED
    assert sig.tokens == {
        "mybot": SignalStatus.ALLOWED,
        "gptbot": SignalStatus.RESERVED,
        "ccbot": SignalStatus.ALLOWED,
    }
    assert robots_status(docs, "/other.jpg")[0] is SignalStatus.ALLOWED


def test_robots_server_that_hangs_is_unknown(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    def hang(_request: Request) -> Response:
        time.sleep(1.5)
        return Response("User-agent: *\nAllow: /\n")

    httpserver.expect_request("/robots.txt").respond_with_handler(hang)
    status, detail = robots_status(docs_for(engine, http, httpserver))
    assert status is SignalStatus.UNKNOWN
    assert "timeout" in detail


def test_robots_redirect_loop_is_unknown(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "", status=302, headers={"Location": "/robots.txt"}
    )
    status, detail = robots_status(docs_for(engine, http, httpserver))
    assert status is SignalStatus.UNKNOWN
    assert "redirect" in detail


def test_robots_redirect_followed(engine: Engine, http: SafeHttp, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "", status=301, headers={"Location": "/real-robots.txt"}
    )
    httpserver.expect_request("/real-robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /img/\n"
    )
    assert robots_status(docs_for(engine, http, httpserver))[0] is SignalStatus.RESERVED


def test_robots_oversize_body_parses_first_500_kib(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    head = "User-agent: *\nDisallow: /private/\n"
    padding = "# filler line to make the file large\n" * (MAX_ROBOTS_BYTES // 30)
    body = head + padding + "Disallow: /img/\n"  # beyond the cap: never read
    assert len(body) > MAX_ROBOTS_BYTES
    serve_robots(httpserver, body)
    docs = docs_for(engine, http, httpserver)
    assert docs.robots.truncated
    assert robots_status(docs, "/private/x.jpg")[0] is SignalStatus.RESERVED
    assert robots_status(docs, "/img/a.jpg")[0] is SignalStatus.ALLOWED


def test_robots_binary_garbage_never_raises(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, bytes(range(256)) * 8 + b"\nUser-agent: *\nDisallow: /img/\n")
    docs = docs_for(engine, http, httpserver)
    assert robots_status(docs)[0] is SignalStatus.RESERVED


def test_private_address_refused_without_allow_private(
    engine: Engine, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    with SafeHttp("provenance-test/1.0", allow_private=False, timeout=1.0) as strict:
        docs = docs_for(engine, strict, httpserver)
    status, detail = robots_status(docs)
    assert status is SignalStatus.UNKNOWN
    assert "unsafe address" in detail
    assert requests_for(httpserver, "/robots.txt") == 0


def test_aitxt_tdmrep_and_rsl_documents(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\nLicense: /license.xml\n")
    httpserver.expect_request("/ai.txt").respond_with_data("User-agent: ccbot\nDisallow: /\n")
    httpserver.expect_request("/.well-known/tdmrep.json").respond_with_json(
        [{"location": "/img/*", "tdm-reservation": 1, "tdm-policy": "https://e.test/p"}]
    )
    license_xml = (
        '<rsl xmlns="https://rslstandard.org/rsl"><content url="/">'
        '<license><prohibits type="usage">ai-train</prohibits></license></content></rsl>'
    )
    httpserver.expect_request("/license.xml").respond_with_data(
        license_xml, content_type="application/rsl+xml"
    )
    docs = docs_for(engine, http, httpserver)
    by_kind = {s.kind: s for s in docs.signals_for(docs.origin + "/img/a.jpg", TOKENS)}
    assert by_kind[SignalKind.AI_TXT].status is SignalStatus.RESERVED
    assert by_kind[SignalKind.AI_TXT].tokens["ccbot"] is SignalStatus.RESERVED
    assert by_kind[SignalKind.TDMREP].status is SignalStatus.RESERVED
    assert by_kind[SignalKind.TDMREP].extra["policy"] == "https://e.test/p"
    assert by_kind[SignalKind.RSL].status is SignalStatus.RESERVED
    assert by_kind[SignalKind.X_ROBOTS_TAG].status is SignalStatus.UNKNOWN  # headers not read
    with engine.connect() as conn:
        rsl = history(conn, Scope.HOST, "localhost", SignalKind.RSL)
    assert [r.signal.source for r in rsl] == [docs.origin + "/license.xml"]


def test_tdmrep_404_and_malformed(engine: Engine, http: SafeHttp, httpserver: HTTPServer) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    httpserver.expect_request("/.well-known/tdmrep.json").respond_with_data("<html>soft 404</html>")
    docs = docs_for(engine, http, httpserver)
    tdm = docs.signals_for(docs.origin + "/a.jpg", TOKENS, headers=[])[2]
    assert tdm.kind is SignalKind.TDMREP
    assert tdm.status is SignalStatus.UNKNOWN
    # Nothing served at /ai.txt: pytest-httpserver answers 500, which is unknown, not allowed.
    assert docs.signals_for(docs.origin + "/a.jpg", TOKENS)[3].status is SignalStatus.UNKNOWN


# ------------------------------------------------------------------------------ caching


def test_one_robots_request_for_many_urls_and_across_processes(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nDisallow: /private/\n")
    cache = HostDocCache()
    verdicts = []
    for i in range(25):
        with engine.begin() as conn:
            docs = host_documents(conn, http, httpserver.url_for(f"/img/{i}.jpg"), T0, cache=cache)
        verdicts.append(robots_status(docs, f"/img/{i}.jpg")[0])
    assert set(verdicts) == {SignalStatus.ALLOWED}
    # A fresh in-memory cache (another process) still reuses the catalog's observation.
    again = docs_for(engine, http, httpserver, now=T0 + timedelta(hours=23))
    assert again.from_cache
    assert requests_for(httpserver, "/robots.txt") == 1
    assert robots_status(again, "/private/x")[0] is SignalStatus.RESERVED
    # After max_age the documents are fetched again and a second observation is kept.
    later = docs_for(engine, http, httpserver, now=T0 + timedelta(hours=25))
    assert not later.from_cache
    assert requests_for(httpserver, "/robots.txt") == 2
    with engine.connect() as conn:
        rows = history(conn, Scope.HOST, "localhost", SignalKind.ROBOTS)
        assert [r.observed_at for r in rows] == [T0, T0 + timedelta(hours=25)]
        old = latest_observations(
            conn, Scope.HOST, ["localhost"], [SignalKind.ROBOTS], as_of=T0 + timedelta(hours=1)
        )
        assert old[("localhost", SignalKind.ROBOTS)].observed_at == T0


def test_cached_unreachable_robots_stays_unknown(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "oops", status=500)
    docs_for(engine, http, httpserver)
    cached = docs_for(engine, http, httpserver, now=T0 + timedelta(hours=1))
    assert cached.from_cache
    assert robots_status(cached)[0] is SignalStatus.UNKNOWN


# ------------------------------------------------------------------------------ refresh CLI


def add_sightings(settings: Settings, urls: list[str]) -> None:
    eng = make_engine(settings.db_url)
    rows = [
        {
            "sighting_key": f"{i:064x}",
            "status": "ok",
            "url": url,
            "host": "localhost",
            "domain": "localhost",
            "origin_kind": "tar-member",
            "origin": f"shard-0000.tar#{i}",
            "seen_at": T0,
        }
        for i, url in enumerate(urls)
    ]
    with eng.begin() as conn:
        conn.execute(Sighting.__table__.insert(), rows)
    eng.dispose()


def url_rows(settings: Settings, url: str, kind: str) -> list[SignalObservation]:
    eng = make_engine(settings.db_url)
    table = SignalObservation.__table__
    with eng.connect() as conn:
        stmt = (
            select(table)
            .where(table.c.scope == "url", table.c.subject == url, table.c.kind == kind)
            .order_by(table.c.observed_at, table.c.id)
        )
        rows = list(conn.execute(stmt))
    eng.dispose()
    return rows  # type: ignore[return-value]


def test_refresh_records_url_verdicts_for_ingested_sightings(
    cli, settings: Settings, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nDisallow: /blocked/\nContent-Signal: ai-train=no\n")
    httpserver.expect_request("/ai.txt").respond_with_data("", status=404)
    httpserver.expect_request("/.well-known/tdmrep.json").respond_with_data("", status=404)
    ok, blocked = httpserver.url_for("/img/a.jpg"), httpserver.url_for("/blocked/b.jpg")
    add_sightings(settings, [ok, blocked, "file:///local/c.jpg"])
    out = json.loads(cli("signals", "refresh", "--allow-private", "--json").stdout)
    assert out["hosts_checked"] == 1
    assert out["urls_evaluated"] == 2
    assert out["url_verdicts"]["robots"] == {"allowed": 1, "reserved": 1, "unknown": 0}
    assert "x-robots-tag" not in out["url_verdicts"]  # headers were not looked at
    assert url_rows(settings, blocked, "robots")[0].status == "reserved"
    assert url_rows(settings, ok, "robots")[0].status == "allowed"
    assert url_rows(settings, ok, "content-signal")[0].status == "reserved"
    assert url_rows(settings, ok, "content-signal")[0].tokens_reserved.find(",gptbot,") >= 0
    assert url_rows(settings, ok, "ai-txt")[0].status == "allowed"
    # A second refresh adds observations; --older-than skips hosts checked recently.
    cli("signals", "refresh", "--allow-private", "--json")
    assert len(url_rows(settings, ok, "robots")) == 2
    skipped = json.loads(
        cli("signals", "refresh", "--allow-private", "--older-than", "1h", "--json").stdout
    )
    assert (skipped["hosts_checked"], skipped["hosts_skipped"]) == (0, 1)
    assert requests_for(httpserver, "/robots.txt") == 2
    other = json.loads(
        cli("signals", "refresh", "--allow-private", "--domain", "example.org", "--json").stdout
    )
    assert other["hosts_checked"] == 0


def test_refresh_with_headers_then_without_keeps_header_facts(
    cli, settings: Settings, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    httpserver.expect_request("/img/a.jpg", method="HEAD").respond_with_data(
        "", headers={"X-Robots-Tag": "noai", "tdm-reservation": "1"}
    )
    url = httpserver.url_for("/img/a.jpg")
    add_sightings(settings, [url])
    out = json.loads(
        cli("signals", "refresh", "--allow-private", "--with-headers", "--json").stdout
    )
    assert out["url_verdicts"]["x-robots-tag"]["reserved"] == 1
    assert url_rows(settings, url, "tdmrep")[0].status == "reserved"
    cli("signals", "refresh", "--allow-private", "--json")
    tdm = url_rows(settings, url, "tdmrep")
    assert [r.status for r in tdm] == ["reserved", "reserved"]
    assert "headers_observed_at" in json.loads(tdm[1].data)["extra"]
    # Without --with-headers no new x-robots-tag observation shadows the real one.
    assert [r.status for r in url_rows(settings, url, "x-robots-tag")] == ["reserved"]


def test_signals_history_cli(cli, settings: Settings, httpserver: HTTPServer) -> None:
    serve_robots(httpserver, "User-agent: *\nDisallow: /\n")
    add_sightings(settings, [httpserver.url_for("/img/a.jpg")])
    cli("signals", "refresh", "--allow-private")
    host = f"localhost:{httpserver.port}"
    doc = json.loads(
        cli("signals", "history", f"http://{host}", "--kind", "robots", "--json").stdout
    )
    assert len(doc["observations"]) == 1
    first = doc["observations"][0]
    assert first["status"] == "reserved"
    assert first["source"].endswith("/robots.txt")
    assert "Disallow" in first["evidence_excerpt"]
    url_doc = json.loads(
        cli("signals", "history", httpserver.url_for("/img/a.jpg"), "--json").stdout
    )
    assert {o["kind"] for o in url_doc["observations"]} >= {"robots", "ai-txt", "tdmrep"}
    past = json.loads(
        cli("signals", "history", host, "--as-of", "2000-01-01T00:00:00Z", "--json").stdout
    )
    assert past["current"] == []
    cli("signals", "history", host, "--kind", "nonsense", expect=2)


def test_refresh_needs_a_catalog(tmp_path) -> None:
    from typer.testing import CliRunner

    from provenance.cli import app

    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["--db", missing, "signals", "refresh"])
    assert result.exit_code == 3


def test_parse_duration() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("12H") == timedelta(hours=12)
    with pytest.raises(BadInput):
        parse_duration("soon")


def test_record_count_is_append_only(
    engine: Engine, http: SafeHttp, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    with engine.begin() as conn:
        host_documents(conn, http, origin(httpserver), T0, reuse=False)
        host_documents(conn, http, origin(httpserver), T0, reuse=False)
        count = conn.execute(select(func.count()).select_from(SignalObservation.__table__)).scalar()
    # robots (+ content-signal, content-usage), ai-txt, tdmrep: twice, never replaced.
    assert count == 10


def test_refresh_refuses_private_addresses_by_default(
    cli, settings: Settings, httpserver: HTTPServer
) -> None:
    serve_robots(httpserver, "User-agent: *\nAllow: /\n")
    url = httpserver.url_for("/img/a.jpg")
    add_sightings(settings, [url])
    out = json.loads(cli("signals", "refresh", "--json").stdout)
    assert out["hosts_unreachable"] == 1
    assert out["url_verdicts"]["robots"] == {"allowed": 0, "reserved": 0, "unknown": 1}
    assert httpserver.log == []


def test_history_of_a_url_as_of_a_time(cli, settings: Settings, httpserver: HTTPServer) -> None:
    serve_robots(httpserver, "User-agent: *\nDisallow: /img/\n")
    url = httpserver.url_for("/img/a.jpg")
    add_sightings(settings, [url])
    cli("signals", "refresh", "--allow-private")
    doc = json.loads(cli("signals", "history", url, "--as-of", "2100-01-01", "--json").stdout)
    current = {o["kind"]: o for o in doc["current"]}
    assert current["robots"]["status"] == "reserved"
    assert current["robots"]["scope"] == "url"
    robots_doc = json.loads(
        cli("signals", "history", httpserver.url_for("/robots.txt"), "--json").stdout
    )
    assert {o["scope"] for o in robots_doc["observations"]} == {"host"}
    assert {o["kind"] for o in robots_doc["observations"]} >= {"robots", "content-signal"}
