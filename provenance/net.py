"""A small HTTP client that is safe to point at untrusted URLs.

Every hop (the first request and each redirect) resolves the host, refuses loopback, private,
link-local, multicast, reserved, unspecified and cloud-metadata addresses unless
`allow_private`, and then connects to exactly the address it vetted (the Host header and, for
https, SNI and certificate checks still use the host name), so a DNS answer that changes
between the check and the connect (rebinding) is never used. Failures are data
(`HttpResult.error`), never exceptions: a crawler records them and goes on.

Timeouts: `timeout` bounds the connect and every socket read; a watchdog thread aborts any
request still running at its total deadline, so a server that trickles bytes (headers or body)
cannot hold a worker forever. Connections are kept alive per (scheme, host, port) and
at most `per_host_limit` requests run against one host:port at a time.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import ipaddress
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 50 * MIB
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
TRANSIENT_ERRORS = frozenset({"timeout", "connection reset", "connection closed"})
_CHUNK = 64 * 1024
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"
# Hosts and addresses that serve cloud credentials. Refused even with allow_private: no
# legitimate image lives there, and leaking instance credentials is the worst SSRF outcome.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class HttpResult:
    """What one request (with its redirects) produced. `error` is None on any HTTP answer."""

    url: str
    final_url: str
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    error: str | None = None
    truncated: bool = False
    elapsed_ms: int = 0
    redirects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def header_values(self, name: str) -> list[str]:
        """Every value of a repeated header, in order."""
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @property
    def ok(self) -> bool:
        """A complete 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        """Worth retrying later: timeouts, resets, 429, 502, 503, 504."""
        if self.error is not None:
            return self.error in TRANSIENT_ERRORS
        return self.status in TRANSIENT_STATUS


def request_host(host: str) -> str:
    """The host as it goes on the wire: lower-case, IDNA (punycode), no trailing dot, IP
    literals in canonical form; raises ValueError if it is not a usable host name."""
    name = host.strip().rstrip(".").lower()
    if not name:
        raise ValueError("empty host name")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"invalid host name {host!r}: {exc}") from exc


def unsafe_reason(address: Address, *, allow_private: bool) -> str | None:
    """Why a resolved address must not be contacted, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return unsafe_reason(address.ipv4_mapped, allow_private=allow_private)
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if allow_private:
        return None
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


class RequestRefused(Exception):
    """A hop that is not made or did not complete; the message becomes HttpResult.error."""


def resolve_safe(host: str, port: int, allow_private: bool) -> list[Address]:
    """Resolve `host`; return its addresses if every one may be contacted, else raise.

    The connection is then made to these addresses only (never resolved again).
    """
    if host in METADATA_HOSTS:
        raise RequestRefused(f"unsafe address (cloud metadata host) for {host}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RequestRefused(f"cannot resolve {host}: {exc}") from exc
    addresses: list[Address] = []
    for info in infos:
        # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"); the zone is not part of the IP.
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in addresses:
            addresses.append(addr)
    # Fail closed: one unsafe answer among safe ones is refused too, since which one the
    # resolver hands out next is the attacker's choice.
    for addr in addresses:
        if unsafe_reason(addr, allow_private=allow_private):
            raise RequestRefused(f"unsafe address {addr} for {host}")
    if not addresses:
        raise RequestRefused(f"cannot resolve {host}: no addresses")
    return addresses


class _Watched:
    """A request under watch: its connection, and its socket once connected (http.client
    drops `conn.sock` when a response takes the connection over, so it is kept here)."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.sock: socket.socket | None = None

    def abort(self) -> None:
        sock = self.sock or self.conn.sock
        if sock is None:
            return  # still connecting: the connect timeout bounds that
        # Already closed means nothing is left to interrupt.
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that shuts down the socket of any request past its total deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, _Watched] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, conn: http.client.HTTPConnection) -> tuple[int, _Watched]:
        with self._cond:
            token = next(self._ids)
            watched = self._live[token] = _Watched(conn)
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
            return token, watched

    def cancel(self, token: int) -> bool:
        """Stop watching; False if the deadline already fired (the socket is unusable)."""
        with self._cond:
            return self._live.pop(token, None) is not None

    def abort_all(self) -> None:
        """End every request in flight now (the client is closing)."""
        with self._cond:
            for watched in self._live.values():
                watched.abort()
            self._live.clear()

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                if token not in self._live:
                    heapq.heappop(self._heap)
                    continue
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                # Aborted under the lock, so cancel() never returns True for an aborted
                # socket and a finished connection is never shut down after reuse.
                self._live.pop(token).abort()


def _error_text(exc: BaseException) -> str:
    """A short, stable description of a network failure (what fetch_attempts stores)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"tls error: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected | http.client.IncompleteRead):
        return "connection closed"
    if isinstance(exc, http.client.HTTPException):
        return f"bad response: {type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return f"bad response: {exc}"


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # normalized (IDNA, lower-case)
    port: int
    path: str  # path and query, as sent

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"


def _parse(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RequestRefused(f"unsupported scheme {scheme or '(none)'}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        host = request_host(parts.hostname or "")
    except ValueError as exc:
        raise RequestRefused(f"invalid URL {url!r}: {exc}") from exc
    # Only characters that cannot go on the request line (spaces, non-ASCII) are escaped.
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path = f"{path}?{quote(parts.query, safe=_PATH_SAFE)}"
    return _Target(scheme, host, port, path)


def _pinned_connection(
    target: _Target, addresses: list[Address], timeout: float, context: ssl.SSLContext
) -> http.client.HTTPConnection:
    """A connection to one of `addresses` that still speaks to `target.host` (Host, SNI,
    certificate)."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    def connect_pinned(
        _addr: tuple[str, int], timeout: float | None = None, source: tuple[str, int] | None = None
    ) -> socket.socket:
        last: OSError | None = None
        for address in addresses:
            try:
                return socket.create_connection((str(address), target.port), timeout, source)
            except OSError as exc:
                last = exc
        assert last is not None  # addresses is never empty (resolve_safe guarantees it)
        raise last

    # http.client calls this hook inside connect(); HTTPS then wraps the socket with
    # server_hostname=target.host, so certificate and SNI checks use the name, not the IP.
    conn._create_connection = connect_pinned  # type: ignore[attr-defined]
    return conn


class SafeHttp:
    """Thread-safe, SSRF-safe HTTP client with keep-alive, per-host bounds and hard deadlines."""

    def __init__(
        self,
        user_agent: str,
        allow_private: bool,
        timeout: float = 10.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        per_host_limit: int = 2,
        total_timeout: float | None = None,
        resolve: Callable[[str, int, bool], list[Address]] = resolve_safe,
    ) -> None:
        if per_host_limit < 1:
            raise ValueError("per_host_limit must be at least 1")
        self.user_agent = user_agent
        self.allow_private = allow_private
        self.timeout = timeout
        # A whole request (all hops, all body bytes) ends by this many seconds.
        self.total_timeout = total_timeout if total_timeout is not None else timeout * 6
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.per_host_limit = per_host_limit
        self._resolve = resolve
        self._ssl = ssl.create_default_context()
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
        self._watchdog = _Watchdog()

    def __enter__(self) -> SafeHttp:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End requests still in flight (they report "timeout") and close idle connections."""
        self._watchdog.abort_all()
        with self._lock:
            pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.close()

    def get(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> HttpResult:
        """Request `url`, following up to `max_redirects` redirects, each hop vetted again."""
        start = time.monotonic()
        deadline = start + self.total_timeout
        cap = self.max_bytes if max_bytes is None else max_bytes
        current = url
        hops: list[str] = []
        while True:
            try:
                status, resp_headers, body, truncated = self._hop(
                    current, method, headers or {}, cap, deadline
                )
            except RequestRefused as exc:
                return self._result(url, current, None, [], b"", str(exc), False, start, hops)
            location = _header(resp_headers, "location")
            if status in REDIRECT_CODES and location:
                if len(hops) >= self.max_redirects:
                    return self._result(
                        url, current, status, resp_headers, b"", "too many redirects", False,
                        start, hops,
                    )
                current = urljoin(current, location.strip())
                hops.append(current)
                if status == 303 and method != "HEAD":
                    method = "GET"
                continue
            error = f"body larger than {cap} bytes" if truncated else None
            return self._result(
                url, current, status, resp_headers, body, error, truncated, start, hops
            )

    @staticmethod
    def _result(
        url: str,
        final: str,
        status: int | None,
        headers: list[tuple[str, str]],
        body: bytes,
        error: str | None,
        truncated: bool,
        start: float,
        hops: list[str],
    ) -> HttpResult:
        elapsed = int((time.monotonic() - start) * 1000)
        return HttpResult(url, final, status, headers, body, error, truncated, elapsed, hops)

    def _slot(self, target: _Target) -> threading.BoundedSemaphore:
        with self._lock:
            key = (target.host, target.port)
            if key not in self._slots:
                self._slots[key] = threading.BoundedSemaphore(self.per_host_limit)
            return self._slots[key]

    def _hop(
        self, url: str, method: str, extra: Mapping[str, str], cap: int, deadline: float
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        """One request without following redirects. Raises RequestRefused for anything not HTTP."""
        target = _parse(url)
        addresses = self._resolve(target.host, target.port, self.allow_private)
        request_headers = {
            "Host": target.host_header,
            "User-Agent": self.user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            **extra,
        }
        with self._slot(target):
            conn = self._checkout(target, addresses)
            try:
                return self._exchange(conn, target, method, request_headers, cap, deadline)
            except _StaleConnection:
                # The server closed the idle keep-alive connection meanwhile (a reset before
                # any response byte): retry once on a fresh one, which never raises this.
                fresh = _pinned_connection(target, addresses, self.timeout, self._ssl)
                return self._exchange(fresh, target, method, request_headers, cap, deadline)

    def _checkout(
        self, target: _Target, addresses: list[Address]
    ) -> http.client.HTTPConnection:
        # Idle connections were opened to addresses vetted then; every hop re-resolves and
        # re-vets the name above before any request goes out on one.
        key = (target.scheme, target.host, target.port)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return _pinned_connection(target, addresses, self.timeout, self._ssl)

    def _checkin(self, conn: http.client.HTTPConnection, target: _Target) -> None:
        key = (target.scheme, target.host, target.port)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.per_host_limit:
                idle.append(conn)
                return
        conn.close()

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        target: _Target,
        method: str,
        headers: Mapping[str, str],
        cap: int,
        deadline: float,
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        if time.monotonic() >= deadline:
            conn.close()
            raise RequestRefused("timeout")
        token, watched = self._watchdog.watch(deadline, conn)
        reused = conn.sock is not None
        got_response = False
        try:
            conn.request(method, target.path, headers=dict(headers))
            watched.sock = conn.sock
            resp = conn.getresponse()
            got_response = True
            resp_headers = [(k, v) for k, v in resp.getheaders()]
            body, truncated = _read_capped(resp, cap)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            on_time = self._watchdog.cancel(token)
            conn.close()
            if not on_time:
                raise RequestRefused("timeout") from None
            if reused and not got_response and _is_stale(exc):
                raise _StaleConnection from exc
            raise RequestRefused(_error_text(exc)) from None
        on_time = self._watchdog.cancel(token)
        if truncated or not on_time or resp.will_close:
            conn.close()
        else:
            self._checkin(conn, target)
        if not on_time:
            raise RequestRefused("timeout")
        return resp.status, resp_headers, body, truncated


class _StaleConnection(Exception):
    """A reused keep-alive connection the server had already closed."""


def _is_stale(exc: BaseException) -> bool:
    return isinstance(
        exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
    )


def _read_capped(resp: http.client.HTTPResponse, cap: int) -> tuple[bytes, bool]:
    """Read the body in chunks; stop (truncated=True) once more than `cap` bytes arrive."""
    declared = resp.getheader("content-length")
    if declared and declared.strip().isdigit() and int(declared) > cap:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.read1(_CHUNK)
        if not chunk:
            # read1 never marks a Content-Length body finished; closing the response does
            # (it keeps the socket), so the keep-alive connection can carry the next request.
            resp.close()
            return b"".join(chunks), False
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
        chunks.append(chunk)


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)
