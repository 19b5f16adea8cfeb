"""Host-level signal documents: robots.txt, ai.txt, /.well-known/tdmrep.json and the RSL
licenses robots.txt names — fetched politely, recorded as host-scope observations with their
raw bodies as evidence, and reused from the catalog until they expire.

The cache lives in the catalog (so it survives processes and is shared by every worker): the
latest unexpired host-scope observation of a document is turned back into the parsed document
from its stored evidence. An optional in-memory `HostDocCache` saves the catalog round trip
within one run.

Fetch calls `host_documents` before downloading from a host, then
`provenance.signals.evaluate.url_level_signals` (or `HostDocs.signals_for`) after its GET with
the response headers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection

from provenance.db.signal_store import (
    Evidence,
    StoredObservation,
    evidence_contents,
    latest_by_source,
    record_observations,
)
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from provenance.errors import BadInput
from provenance.ingest.keys import normalize_host
from provenance.net import HttpResult, SafeHttp
from provenance.signals.aitxt import aitxt_signal
from provenance.signals.content_signal import content_signal
from provenance.signals.content_usage import content_usage_from_robots
from provenance.signals.evaluate import url_level_signals
from provenance.signals.robots import (
    MAX_ROBOTS_BYTES,
    RobotsDoc,
    robots_from_response,
    robots_signal,
)
from provenance.signals.rsl import MAX_RSL_BYTES, parse_rsl, rsl_locations
from provenance.signals.tdmrep import (
    MAX_TDMREP_BYTES,
    WELL_KNOWN_PATH,
    TdmRepDoc,
    tdmrep_from_response,
    tdmrep_signal,
)
from provenance.signals.tokens import default_tokens

DEFAULT_MAX_AGE = timedelta(hours=24)
ROBOTS_PATH = "/robots.txt"
AITXT_PATH = "/ai.txt"
MAX_RSL_LICENSES = 5
# A body declared larger than the cap arrives empty; robots.txt is then read once more with
# this cap so its first 500 KiB can still be parsed (RFC 9309 section 2.5).
_ROBOTS_RETRY_BYTES = 8 * 1024 * 1024
HOST_DOC_KINDS = (SignalKind.ROBOTS, SignalKind.AI_TXT, SignalKind.TDMREP)


def origin_of(url_or_origin: str) -> str:
    """`scheme://host[:port]` (lower-case, default port dropped) of a URL or origin."""
    parts = urlsplit(url_or_origin.strip())
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise BadInput(f"not a URL: {url_or_origin!r} ({exc})") from exc
    if scheme not in ("http", "https") or not host:
        raise BadInput(f"not an http(s) URL: {url_or_origin!r}")
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}" if port in (None, default) else f"{scheme}://{shown}:{port}"


def host_of(url_or_origin: str) -> str:
    """The subject of host-scope observations: the normalized host name (as in
    `sightings.host`); scheme and port live in the observation's `source` URL."""
    host = urlsplit(origin_of(url_or_origin)).hostname or ""
    try:
        return normalize_host(host)
    except ValueError as exc:
        raise BadInput(f"not a usable host in {url_or_origin!r}: {exc}") from exc


@dataclass(frozen=True)
class Fetched:
    """One host document as read: enough to rebuild the parsed document later."""

    kind: SignalKind
    source: str
    http_status: int | None
    body: bytes
    error: str | None
    final_url: str | None = None
    truncated: bool = False

    @classmethod
    def from_result(cls, kind: SignalKind, source: str, result: HttpResult) -> Fetched:
        return cls(
            kind,
            source,
            result.status,
            result.body,
            result.error,
            result.final_url,
            result.truncated,
        )


@dataclass(frozen=True)
class HostDocs:
    """The parsed host documents of one origin, and when they were observed."""

    origin: str
    robots: RobotsDoc
    aitxt: RobotsDoc
    tdmrep: TdmRepDoc
    rsl_docs: Mapping[str, bytes] = field(default_factory=dict)
    observed_at: datetime | None = None
    expires_at: datetime | None = None
    from_cache: bool = False

    def signals_for(
        self,
        url: str,
        tokens: Sequence[str],
        headers: Sequence[tuple[str, str]] | None = None,
        html_meta: Mapping[str, str] | None = None,
        extra_rsl: Mapping[str, bytes] | None = None,
    ) -> list[Signal]:
        """`url_level_signals` for a URL of this host (headers None: not requested)."""
        return url_level_signals(
            url,
            tokens,
            robots=self.robots,
            aitxt=self.aitxt,
            tdmrep=self.tdmrep,
            rsl_docs={**self.rsl_docs, **(extra_rsl or {})},
            headers=headers,
            html_meta=html_meta,
        )


class HostDocCache:
    """In-memory LRU of HostDocs by origin for one run; entries die at their expiry."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, HostDocs] = OrderedDict()

    def get(self, origin: str, now: datetime) -> HostDocs | None:
        docs = self._items.get(origin)
        if docs is None or (docs.expires_at is not None and docs.expires_at <= now):
            return None
        self._items.move_to_end(origin)
        return docs

    def put(self, docs: HostDocs) -> None:
        self._items[docs.origin] = docs
        self._items.move_to_end(docs.origin)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


# ------------------------------------------------------------------------------ fetching


def fetch_robots_like(http: SafeHttp, kind: SignalKind, url: str) -> Fetched:
    """GET robots.txt or ai.txt: redirects are followed by the client (at most 5), the body
    is read up to 500 KiB (a larger one is cut, not refused)."""
    result = http.get(url, max_bytes=MAX_ROBOTS_BYTES)
    if result.truncated and not result.body:
        result = http.get(url, max_bytes=_ROBOTS_RETRY_BYTES)
    if result.truncated and result.body:
        # RFC 9309 2.5: parse the first 500 KiB; the cut is data, not an error.
        return Fetched(
            kind, url, result.status, result.body[:MAX_ROBOTS_BYTES], None, result.final_url, True
        )
    return Fetched.from_result(kind, url, result)


def fetch_capped(http: SafeHttp, kind: SignalKind, url: str, cap: int) -> Fetched:
    """GET a document that must be read whole: one larger than `cap` is an error."""
    return Fetched.from_result(kind, url, http.get(url, max_bytes=cap))


def fetch_host_documents(
    http: SafeHttp, origin: str, kinds: Sequence[SignalKind] = HOST_DOC_KINDS
) -> list[Fetched]:
    """Fetch the wanted host documents of an origin (network only, no catalog; thread-safe)."""
    fetched: list[Fetched] = []
    for kind in kinds:
        if kind is SignalKind.ROBOTS:
            fetched.append(fetch_robots_like(http, kind, origin + ROBOTS_PATH))
        elif kind is SignalKind.AI_TXT:
            fetched.append(fetch_robots_like(http, kind, origin + AITXT_PATH))
        elif kind is SignalKind.TDMREP:
            fetched.append(fetch_capped(http, kind, origin + WELL_KNOWN_PATH, MAX_TDMREP_BYTES))
    return fetched


def fetch_licenses(http: SafeHttp, locations: Sequence[str]) -> list[Fetched]:
    """Fetch RSL license documents (at most MAX_RSL_LICENSES of them)."""
    return [
        fetch_capped(http, SignalKind.RSL, loc, MAX_RSL_BYTES)
        for loc in locations[:MAX_RSL_LICENSES]
    ]


# ------------------------------------------------------------------------------ parsing


def robots_doc(f: Fetched) -> RobotsDoc:
    return robots_from_response(f.source, f.http_status, f.body, f.error)


def tdmrep_doc(f: Fetched) -> TdmRepDoc:
    return tdmrep_from_response(f.source, f.http_status, f.body, f.error)


def license_body(f: Fetched) -> bytes | None:
    """The license XML when it was read whole with a 2xx answer, else None (unknown)."""
    ok = f.error is None and f.http_status is not None and 200 <= f.http_status < 300
    return f.body if ok else None


def _unread_signal(f: Fetched) -> Signal:
    what = f.error or (f"HTTP {f.http_status}" if f.http_status is not None else "no response")
    return Signal(SignalKind.RSL, SignalStatus.UNKNOWN, f"license not read: {what}", f.source)


def document_observations(
    fetched: Sequence[Fetched],
    origin: str,
    tokens: Sequence[str],
    now: datetime,
    expires: datetime,
    run_id: int | None,
) -> tuple[list[Observation], list[Evidence | None]]:
    """Host-scope observations of fetched documents, each with its raw body as evidence.

    The status of a document's observation is its verdict for the site root `/` over
    `tokens`; `extra` keeps what is needed to rebuild the parsed document from the evidence.
    """
    root = origin + "/"
    observations: list[Observation] = []
    raw: list[Evidence | None] = []
    for f in fetched:
        signals: list[Signal]
        if f.kind is SignalKind.ROBOTS:
            doc = robots_doc(f)
            signals = [
                robots_signal(doc, root, tokens),
                content_signal(doc, root, tokens),
                content_usage_from_robots(doc, root, tokens),
            ]
        elif f.kind is SignalKind.AI_TXT:
            signals = [aitxt_signal(robots_doc(f), root, tokens)]
        elif f.kind is SignalKind.TDMREP:
            signals = [tdmrep_signal(tdmrep_doc(f), [], root)]
        else:
            body = license_body(f)
            signals = [parse_rsl(body, f.source, root) if body is not None else _unread_signal(f)]
        facts = {
            "http_status": f.http_status,
            "error": f.error,
            "final_url": f.final_url,
            "truncated": f.truncated,
        }
        for sig in signals:
            sig = Signal(
                sig.kind,
                sig.status,
                sig.detail,
                f.source,
                sig.tokens,
                {**sig.extra, "document": facts},
            )
            observations.append(
                Observation(Scope.HOST, host_of(f.source), sig, now, expires, run_id)
            )
            raw.append(
                Evidence(
                    f.body, "text/plain" if f.kind is not SignalKind.RSL else "application/xml"
                )
            )
    return observations, raw


# ------------------------------------------------------------------------------ catalog cache


def _rebuild(stored: StoredObservation, contents: Mapping[str, bytes]) -> Fetched:
    facts = stored.signal.extra.get("document", {})
    body = contents.get(stored.evidence_sha256, b"") if stored.evidence_sha256 else b""
    return Fetched(
        stored.signal.kind,
        stored.signal.source or "",
        facts.get("http_status"),
        body,
        facts.get("error"),
        facts.get("final_url"),
        bool(facts.get("truncated")),
    )


DOC_PATHS = {
    SignalKind.ROBOTS: ROBOTS_PATH,
    SignalKind.AI_TXT: AITXT_PATH,
    SignalKind.TDMREP: WELL_KNOWN_PATH,
}


def cached_documents(
    conn: Connection, origin: str, now: datetime
) -> dict[SignalKind, tuple[Fetched, datetime]]:
    """The host documents of `origin` whose latest observation has not expired at `now`,
    with their expiry."""
    sources = [origin + path for path in DOC_PATHS.values()]
    latest = latest_by_source(
        conn, Scope.HOST, [host_of(origin)], sources, kinds=HOST_DOC_KINDS, as_of=now
    )
    live = [s for s in latest.values() if s.expires_at is not None and s.expires_at > now]
    contents = evidence_contents(conn, [s.evidence_sha256 for s in live if s.evidence_sha256])
    return {s.signal.kind: (_rebuild(s, contents), s.expires_at) for s in live if s.expires_at}


def cached_licenses(
    conn: Connection, locations: Sequence[str], now: datetime
) -> dict[str, Fetched]:
    """RSL license documents read before and not yet expired, by license URL."""
    if not locations:
        return {}
    hosts = [host_of(loc) for loc in locations]
    latest = latest_by_source(conn, Scope.HOST, hosts, locations, [SignalKind.RSL], as_of=now)
    live = [s for s in latest.values() if s.expires_at is not None and s.expires_at > now]
    contents = evidence_contents(conn, [s.evidence_sha256 for s in live if s.evidence_sha256])
    return {s.signal.source or "": _rebuild(s, contents) for s in live}


def assemble(
    origin: str,
    docs: Mapping[SignalKind, Fetched],
    licenses: Mapping[str, Fetched],
    now: datetime,
    expires: datetime,
    from_cache: bool,
    robots: RobotsDoc | None = None,
) -> HostDocs:
    """HostDocs from fetched (or rebuilt) documents (`robots`: already parsed, if it was)."""
    rsl = {loc: body for loc, f in licenses.items() if (body := license_body(f)) is not None}
    return HostDocs(
        origin=origin,
        robots=robots or robots_doc(docs[SignalKind.ROBOTS]),
        aitxt=robots_doc(docs[SignalKind.AI_TXT]),
        tdmrep=tdmrep_doc(docs[SignalKind.TDMREP]),
        rsl_docs=rsl,
        observed_at=now,
        expires_at=expires,
        from_cache=from_cache,
    )


def host_documents(
    conn: Connection | None,
    http: SafeHttp,
    scheme_host: str,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    *,
    tokens: Sequence[str] | None = None,
    cache: HostDocCache | None = None,
    reuse: bool = True,
    run_id: int | None = None,
) -> HostDocs:
    """The robots.txt, ai.txt, tdmrep.json and RSL licenses of one origin.

    Reuses (when `reuse`) the in-memory `cache` entry, else the latest unexpired observations
    in the catalog; fetches only what is missing and records each fetched document as a
    host-scope observation (raw body as evidence, expiring at now + max_age) in the caller's
    transaction. `conn` None: no catalog, fetch every time. `tokens` (default: the shipped AI
    token list) are those the recorded root verdicts are evaluated for.
    """
    origin = origin_of(scheme_host)
    if reuse and cache is not None and (hit := cache.get(origin, now)) is not None:
        return hit
    cached = cached_documents(conn, origin, now) if conn is not None and reuse else {}
    missing = [k for k in HOST_DOC_KINDS if k not in cached]
    fetched = fetch_host_documents(http, origin, missing)
    docs = {**{k: f for k, (f, _) in cached.items()}, **{f.kind: f for f in fetched}}
    fresh_until = now + max_age
    # The set is as fresh as its oldest member.
    expires = min([fresh_until, *(at for _, at in cached.values())])
    robots = robots_doc(docs[SignalKind.ROBOTS])
    locations = rsl_locations(robots, [])[:MAX_RSL_LICENSES]
    licenses = cached_licenses(conn, locations, now) if conn is not None and reuse else {}
    new_licenses = fetch_licenses(http, [loc for loc in locations if loc not in licenses])
    licenses.update({f.source: f for f in new_licenses})
    if conn is not None and (fetched or new_licenses):
        observations, raw = document_observations(
            [*fetched, *new_licenses], origin, tokens or default_tokens(), now, fresh_until, run_id
        )
        record_observations(conn, observations, raw)
    result = assemble(origin, docs, licenses, now, expires, not fetched, robots)
    if cache is not None:
        cache.put(result)
    return result
