"""SafeHttp against real local servers: refusals, redirects, caps, deadlines, per-host bounds."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from provenance.net import (
    Address,
    RequestRefused,
    SafeHttp,
    request_host,
    resolve_safe,
    unsafe_reason,
)
from provenance.samples import image_bytes

UA = "provenance-test/1.0"


@pytest.fixture(scope="module")
def module_server() -> Iterator[HTTPServer]:
    """A threaded server on 127.0.0.1 (concurrency tests need parallel handlers)."""
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def server(module_server: HTTPServer) -> Iterator[HTTPServer]:
    module_server.clear()
    yield module_server
    module_server.clear()


def paths(srv: HTTPServer) -> list[str]:
    return [req.path for req, _resp in srv.log]


def test_get_returns_body_status_and_every_header_line(server: HTTPServer) -> None:
    jpeg = image_bytes(1)
    server.expect_request("/a.jpg").respond_with_response(
        Response(
            jpeg,
            headers=[
                ("Content-Type", "image/jpeg"),
                ("X-Robots-Tag", "noindex"),
                ("X-Robots-Tag", "otherbot: noai"),
            ],
        )
    )
    with SafeHttp(UA, allow_private=True) as http:
        res = http.get(server.url_for("/a.jpg"))
    assert res.ok and res.status == 200 and res.error is None
    assert res.body == jpeg and not res.truncated
    assert res.header_values("x-robots-tag") == ["noindex", "otherbot: noai"]
    assert res.header("content-type") == "image/jpeg"
    request = server.log[0][0]
    assert request.headers["User-Agent"] == UA


def test_loopback_refused_without_allow_private(server: HTTPServer) -> None:
    server.expect_request("/a.jpg").respond_with_data(b"x")
    url = f"http://localhost:{server.port}/a.jpg"
    with SafeHttp(UA, allow_private=False) as http:
        res = http.get(url)
    assert res.status is None
    assert res.error == "unsafe address 127.0.0.1 for localhost"
    assert server.log == []


def test_redirect_to_private_address_refused_on_the_hop(server: HTTPServer) -> None:
    """The first host is treated as public; the redirect target (localhost) is vetted again."""

    def resolve(host: str, port: int, allow_private: bool) -> list[Address]:
        if host == "public.test":
            return [ipaddress.ip_address("127.0.0.1")]
        return resolve_safe(host, port, allow_private)

    server.expect_request("/start").respond_with_response(
        Response(status=302, headers={"Location": f"http://localhost:{server.port}/secret"})
    )
    server.expect_request("/secret").respond_with_data(b"credentials")
    with SafeHttp(UA, allow_private=False, resolve=resolve) as http:
        res = http.get(f"http://public.test:{server.port}/start")
    assert res.error == "unsafe address 127.0.0.1 for localhost"
    assert res.redirects == [f"http://localhost:{server.port}/secret"]
    assert res.body == b""
    assert paths(server) == ["/start"]
    # The pinned connection still named the host, not the address.
    assert server.log[0][0].headers["Host"] == f"public.test:{server.port}"


def test_metadata_refused_even_with_allow_private() -> None:
    with SafeHttp(UA, allow_private=True) as http:
        res = http.get("http://169.254.169.254/latest/meta-data/")
        named = http.get("http://metadata.google.internal/computeMetadata/v1/")
    assert res.error == "unsafe address 169.254.169.254 for 169.254.169.254"
    assert named.error is not None and named.error.startswith("unsafe address")


def test_follows_redirects_and_limits_them(server: HTTPServer) -> None:
    server.expect_request("/r1").respond_with_response(
        Response(status=301, headers={"Location": "/r2"})
    )
    server.expect_request("/r2").respond_with_response(
        Response(status=307, headers={"Location": "/final"})
    )
    server.expect_request("/final").respond_with_data(b"done")
    server.expect_request("/loop").respond_with_response(
        Response(status=302, headers={"Location": "/loop"})
    )
    with SafeHttp(UA, allow_private=True, max_redirects=3) as http:
        ok = http.get(server.url_for("/r1"))
        looped = http.get(server.url_for("/loop"))
    assert ok.body == b"done" and ok.final_url == server.url_for("/final")
    assert ok.redirects == [server.url_for("/r2"), server.url_for("/final")]
    assert looped.error == "too many redirects" and looped.status == 302
    assert paths(server).count("/loop") == 4


def test_body_cap_with_and_without_content_length(server: HTTPServer) -> None:
    big = b"x" * 5000
    server.expect_request("/sized").respond_with_data(big)

    def streamed(_req: Request) -> Response:
        return Response(iter([big[:2000], big[2000:]]), direct_passthrough=True)

    server.expect_request("/streamed").respond_with_handler(streamed)
    with SafeHttp(UA, allow_private=True, max_bytes=1000) as http:
        sized = http.get(server.url_for("/sized"))
        stream = http.get(server.url_for("/streamed"))
        allowed = http.get(server.url_for("/sized"), max_bytes=10_000)
    for res in (sized, stream):
        assert res.truncated and res.error == "body larger than 1000 bytes"
        assert len(res.body) <= 1000
    assert allowed.ok and allowed.body == big


def test_hanging_server_times_out(server: HTTPServer) -> None:
    release = threading.Event()

    def hang(_req: Request) -> Response:
        release.wait(5)
        return Response(b"late")

    server.expect_request("/hang").respond_with_handler(hang)
    with SafeHttp(UA, allow_private=True, timeout=0.3) as http:
        res = http.get(server.url_for("/hang"))
    release.set()
    assert res.error == "timeout" and res.status is None
    assert res.transient


def test_trickling_body_stopped_by_total_deadline(server: HTTPServer) -> None:
    stop = threading.Event()

    def trickle() -> Iterator[bytes]:
        while not stop.is_set():
            yield b"x"
            time.sleep(0.05)

    server.expect_request("/trickle").respond_with_handler(
        lambda _r: Response(trickle(), direct_passthrough=True)
    )
    # Each read succeeds well within `timeout`; only the total deadline can stop this.
    with SafeHttp(UA, allow_private=True, timeout=2.0, total_timeout=0.5) as http:
        res = http.get(server.url_for("/trickle"))
    stop.set()
    assert res.error == "timeout"


def test_errors_are_data_not_exceptions() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with SafeHttp(UA, allow_private=True, timeout=1.0) as http:
        refused = http.get(f"http://127.0.0.1:{closed_port}/")
        ftp = http.get("ftp://example.com/a.jpg")
        unresolvable = http.get("http://no-such-host.invalid/a.jpg")
    assert refused.error == "connection refused"
    assert ftp.error == "unsupported scheme ftp"
    assert unresolvable.error is not None and unresolvable.error.startswith("cannot resolve")


def test_https_to_plain_http_server_is_a_tls_error(server: HTTPServer) -> None:
    server.expect_request("/a").respond_with_data(b"x")
    with SafeHttp(UA, allow_private=True, timeout=2.0) as http:
        res = http.get(f"https://127.0.0.1:{server.port}/a")
    assert res.status is None
    assert res.error is not None and res.error.startswith(("tls error", "connection"))


def test_status_codes_pass_through_and_transient_flags(server: HTTPServer) -> None:
    server.expect_request("/missing").respond_with_data(b"no", status=404)
    server.expect_request("/busy").respond_with_data(b"", status=503)
    with SafeHttp(UA, allow_private=True) as http:
        missing = http.get(server.url_for("/missing"))
        busy = http.get(server.url_for("/busy"))
    assert missing.status == 404 and missing.error is None and not missing.transient
    assert busy.status == 503 and busy.transient and not busy.ok


def test_per_host_limit_bounds_concurrent_requests(server: HTTPServer) -> None:
    lock = threading.Lock()
    active = [0, 0]  # current, peak

    def slow(_req: Request) -> Response:
        with lock:
            active[0] += 1
            active[1] = max(active[1], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return Response(b"ok")

    server.expect_request("/slow").respond_with_handler(slow)
    with SafeHttp(UA, allow_private=True, per_host_limit=2) as http:
        threads = [
            threading.Thread(target=http.get, args=(server.url_for("/slow"),)) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(server.log) == 8
    assert active[1] == 2


def test_unsafe_reason_classifies_addresses() -> None:
    def reason(text: str, allow: bool = False) -> str | None:
        return unsafe_reason(ipaddress.ip_address(text), allow_private=allow)

    assert reason("127.0.0.1") == "loopback"
    assert reason("::1") == "loopback"
    assert reason("10.1.2.3") == "private"
    assert reason("192.168.0.1") == "private"
    assert reason("169.254.10.1") == "link-local"
    assert reason("224.0.0.1") == "multicast"
    assert reason("0.0.0.0") == "unspecified"
    assert reason("100.64.0.1") == "not globally routable"
    assert reason("::ffff:127.0.0.1") == "loopback"
    assert reason("169.254.169.254", allow=True) == "cloud metadata"
    assert reason("fd00:ec2::254", allow=True) == "cloud metadata"
    assert reason("10.1.2.3", allow=True) is None
    assert reason("93.184.215.14") is None
    assert reason("2606:2800:21f:cb07:6820:80da:af6b:8b2c") is None


def test_resolve_safe_refuses_ip_literals_and_names() -> None:
    with pytest.raises(RequestRefused, match=r"unsafe address 10\.0\.0\.1 for 10\.0\.0\.1"):
        resolve_safe("10.0.0.1", 80, False)
    assert resolve_safe("10.0.0.1", 80, True) == [ipaddress.ip_address("10.0.0.1")]


def test_request_host_is_idna_lower_case_without_trailing_dot() -> None:
    assert request_host("Bücher.Example.") == "xn--bcher-kva.example"
    assert request_host("[::1]") == "::1"
    with pytest.raises(ValueError):
        request_host("")


def test_keep_alive_connection_is_reused_for_sequential_requests() -> None:
    """An HTTP/1.1 server that keeps connections open: all requests share one connection."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    peers: list[tuple[str, int]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def do_GET(self) -> None:
            peers.append(self.client_address)
            body = b"missing" if self.path == "/404" else b"image"
            self.send_response(404 if self.path == "/404" else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        with SafeHttp(UA, allow_private=True) as http:
            results = [http.get(f"{base}{p}") for p in ("/404", "/a", "/b", "/404", "/c")]
    finally:
        srv.shutdown()
        srv.server_close()
    assert [r.status for r in results] == [404, 200, 200, 404, 200]
    assert [r.body for r in results][1:3] == [b"image", b"image"]
    assert len(set(peers)) == 1  # one client port: the connection was kept alive


def test_close_ends_requests_in_flight(server: HTTPServer) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hang(_req: Request) -> Response:
        arrived.set()
        release.wait(5)
        return Response(b"late")

    server.expect_request("/hang").respond_with_handler(hang)
    http = SafeHttp(UA, allow_private=True, timeout=5.0)
    results: list[str | None] = []
    url = server.url_for("/hang")
    worker = threading.Thread(target=lambda: results.append(http.get(url).error))
    worker.start()
    assert arrived.wait(3)
    http.close()
    worker.join(3)
    release.set()
    assert results == ["timeout"]
