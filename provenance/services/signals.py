"""URL-level signal use cases: record URL verdicts, `check-url`, and the history of what a
host or URL said over time.

Host documents (robots.txt, ai.txt, tdmrep.json, RSL) come from `host_signals`; `refresh`
lives in `signals_refresh`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from provenance.config import Settings
from provenance.db.signal_store import (
    StoredObservation,
    history,
    latest_observations,
    record_observations,
)
from provenance.domain import Observation, Scope, Signal, SignalKind, iso, parse_time, utcnow
from provenance.errors import BadInput, CatalogError
from provenance.net import HttpResult, SafeHttp
from provenance.services.catalog import open_catalog
from provenance.services.host_signals import (
    HostDocs,
    fetch_licenses,
    host_documents,
    host_of,
    license_body,
    origin_of,
)
from provenance.signals.evaluate import url_level_signals, verdict
from provenance.signals.html import html_meta
from provenance.signals.robots import RobotsDoc, robots_from_response
from provenance.signals.rsl import rsl_locations
from provenance.signals.tdmrep import TdmRepDoc, tdmrep_from_response
from provenance.signals.tokens import default_tokens, normalize_tokens

# Response headers that carry URL-level signals; kept with the x-robots-tag observation so a
# later `signals refresh` without --with-headers can re-evaluate with what the URL last sent.
SIGNAL_HEADERS = frozenset(
    {"x-robots-tag", "tdm-reservation", "tdm-policy", "content-usage", "link", "content-type"}
)
HEADERS_KEY = "response_headers"
HEADERS_AT_KEY = "headers_observed_at"
MAX_HTML_BYTES = 512 * 1024
CHECK_TIMEOUT_S = 10.0


def product_token(user_agent: str) -> str:
    """The robots.txt product token of a user-agent string: `MyBot/1.0 (+url)` -> `mybot`."""
    words = user_agent.strip().split()
    token = words[0].split("/", 1)[0].strip().lower() if words else ""
    if not token:
        raise BadInput("--user-agent must name a crawler token, e.g. MyBot")
    return token


def catalog_tokens(settings: Settings) -> tuple[str, ...]:
    """Tokens recorded in the catalog: the operator's own crawler, then the shipped AI list."""
    return normalize_tokens([product_token(settings.user_agent), *default_tokens()])


def signal_headers(headers: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The signal-bearing subset of response headers, in order (JSON-ready)."""
    return [[k, v] for k, v in headers if k.strip().lower() in SIGNAL_HEADERS]


# ------------------------------------------------------------------------------ recording


def last_known_headers(
    conn: Connection, urls: Iterable[str]
) -> dict[str, tuple[list[tuple[str, str]], str | None]]:
    """The signal headers each URL last sent (from its latest x-robots-tag observation)."""
    latest = latest_observations(conn, Scope.URL, urls, kinds=[SignalKind.X_ROBOTS_TAG])
    found: dict[str, tuple[list[tuple[str, str]], str | None]] = {}
    for (url, _kind), stored in latest.items():
        raw = stored.signal.extra.get(HEADERS_KEY)
        if isinstance(raw, list):
            headers = [(str(k), str(v)) for k, v in raw]
            found[url] = (headers, iso(stored.observed_at))
    return found


def evaluate_and_record_urls(
    conn: Connection,
    urls: Sequence[str],
    docs: Mapping[str, HostDocs],
    tokens: Sequence[str],
    now: datetime,
    run_id: int | None = None,
    headers_by_url: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    extra_rsl: Mapping[str, bytes] | None = None,
) -> list[Observation]:
    """Evaluate every URL-level signal of `urls` and record one url-scope observation per kind.

    `docs`: HostDocs by origin (`origin_of(url)`), as `host_documents` returns them.
    `headers_by_url`: response headers seen now (e.g. by fetch). A URL without them is
    evaluated with the signal headers it last sent (recorded earlier), else without headers;
    x-robots-tag is recorded only when headers were seen now, so an earlier real header
    observation is never shadowed by "not checked". Returns the recorded observations.
    """
    fresh = headers_by_url or {}
    known = last_known_headers(conn, [u for u in urls if u not in fresh])
    observations: list[Observation] = []
    for url in urls:
        host = docs[origin_of(url)]
        seen_now = fresh.get(url)
        headers = list(seen_now) if seen_now is not None else None
        note: dict[str, Any] = {}
        if headers is None and url in known:
            headers, at = known[url]
            note = {HEADERS_AT_KEY: at}
        for sig in host.signals_for(url, tokens, headers, extra_rsl=extra_rsl):
            if sig.kind is SignalKind.X_ROBOTS_TAG:
                if seen_now is None:
                    continue
                sig = replace(sig, extra={**sig.extra, HEADERS_KEY: signal_headers(seen_now)})
            elif note:
                sig = replace(sig, extra={**sig.extra, **note})
            observations.append(Observation(Scope.URL, url, sig, now, host.expires_at, run_id))
    record_observations(conn, observations)
    return observations


# ------------------------------------------------------------------------------ check-url


@dataclass
class CheckInputs:
    """What check-url read for one URL (None: not looked at)."""

    robots: RobotsDoc | None = None
    aitxt: RobotsDoc | None = None
    tdmrep: TdmRepDoc | None = None
    rsl_docs: dict[str, bytes] | None = None
    headers: list[tuple[str, str]] | None = None
    html_meta: dict[str, str] | None = None
    headers_error: str | None = None


def parse_header_lines(lines: Sequence[str]) -> list[tuple[str, str]]:
    """`Name: value` strings (from --header) as header pairs."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"--header must look like 'Name: value', got {line!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _read_file(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {option} {path}: {exc.strerror or exc}") from exc


def offline_inputs(
    robots_file: Path | None,
    tdmrep_file: Path | None,
    aitxt_file: Path | None,
    headers: Sequence[tuple[str, str]] | None,
) -> CheckInputs:
    """Inputs from local files and given headers only; what is not given is not checked."""
    inputs = CheckInputs(headers=list(headers) if headers else None, rsl_docs={})
    if robots_file is not None:
        body = _read_file(robots_file, "--robots-file")
        inputs.robots = robots_from_response(str(robots_file), 200, body, None)
    if aitxt_file is not None:
        body = _read_file(aitxt_file, "--aitxt-file")
        inputs.aitxt = robots_from_response(str(aitxt_file), 200, body, None)
    if tdmrep_file is not None:
        body = _read_file(tdmrep_file, "--tdmrep-file")
        inputs.tdmrep = tdmrep_from_response(str(tdmrep_file), 200, body, None)
    return inputs


def url_response(http: SafeHttp, url: str) -> HttpResult:
    """HEAD the URL for its headers; servers that refuse HEAD get a one-byte ranged GET."""
    result = http.get(url, method="HEAD")
    if result.status is None or result.status in (405, 501):
        ranged = http.get(url, headers={"Range": "bytes=0-0"}, max_bytes=64 * 1024)
        if ranged.status is not None or result.status is None:
            return ranged
    return result


def _page_meta(http: SafeHttp, url: str, response: HttpResult) -> dict[str, str] | None:
    content_type = (response.header("content-type") or "").lower()
    if "html" not in content_type:
        return None
    page = http.get(url, max_bytes=MAX_HTML_BYTES)
    return html_meta(page.body) if page.status is not None and page.body else None


def _open_catalog_if_any(settings: Settings) -> Engine | None:
    try:
        return open_catalog(settings)
    except CatalogError:
        return None


def online_inputs(
    settings: Settings,
    url: str,
    token: str,
    now: datetime,
    extra_headers: Sequence[tuple[str, str]],
) -> CheckInputs:
    """Fetch the host documents and the URL's headers; record them when a catalog exists."""
    tokens = normalize_tokens([token, *default_tokens()])
    engine = _open_catalog_if_any(settings)
    with SafeHttp(settings.user_agent, settings.allow_private, timeout=CHECK_TIMEOUT_S) as http:
        response = url_response(http, url)
        headers = [*response.headers, *extra_headers] if response.status is not None else None
        meta = _page_meta(http, url, response)
        extra_rsl: dict[str, bytes] = {}
        if engine is None:
            docs = host_documents(None, http, url, now, tokens=tokens, reuse=False)
        else:
            with engine.begin() as conn:
                docs = host_documents(conn, http, url, now, tokens=tokens, reuse=False)
        named = rsl_locations(None, headers or [], url)
        for f in fetch_licenses(http, [loc for loc in named if loc not in docs.rsl_docs]):
            if (body := license_body(f)) is not None:
                extra_rsl[f.source] = body
        if engine is not None:
            with engine.begin() as conn:
                by_url = {url: headers} if headers is not None else None
                evaluate_and_record_urls(
                    conn, [url], {docs.origin: docs}, tokens, now, None, by_url, extra_rsl
                )
            engine.dispose()
    return CheckInputs(
        robots=docs.robots,
        aitxt=docs.aitxt,
        tdmrep=docs.tdmrep,
        rsl_docs={**docs.rsl_docs, **extra_rsl},
        headers=headers,
        html_meta=meta,
        headers_error=response.error if headers is None else None,
    )


def _signals(url: str, tokens: Sequence[str], inputs: CheckInputs) -> list[Signal]:
    return url_level_signals(
        url,
        tokens,
        robots=inputs.robots,
        aitxt=inputs.aitxt,
        tdmrep=inputs.tdmrep,
        rsl_docs=inputs.rsl_docs,
        headers=inputs.headers,
        html_meta=inputs.html_meta,
    )


def focused_signals(url: str, token: str, inputs: CheckInputs) -> list[Signal]:
    """Signals whose status and detail are for `token`; `tokens` adds the default AI list."""
    mine = _signals(url, [token], inputs)
    others = _signals(url, normalize_tokens([token, *default_tokens()]), inputs)
    out: list[Signal] = []
    for sig, wide in zip(mine, others, strict=True):
        if wide.tokens:
            sig = replace(sig, tokens={**wide.tokens, **sig.tokens})
        if sig.kind is SignalKind.X_ROBOTS_TAG and inputs.headers_error:
            sig = replace(sig, detail=f"response headers not read: {inputs.headers_error}")
        out.append(sig)
    return out


def check_url(
    settings: Settings,
    url: str,
    user_agent: str,
    *,
    offline: bool,
    robots_file: Path | None = None,
    tdmrep_file: Path | None = None,
    aitxt_file: Path | None = None,
    headers: Sequence[str] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every URL-level signal of one URL for one user agent (the CLI.md check-url shape).

    Offline: only the given files and headers; anything not given is `unknown`. Online: the
    host documents and the URL's headers are fetched (given files override fetched ones) and,
    when a catalog exists, recorded. No catalog is needed.
    """
    origin_of(url)  # validates the URL before anything is read or fetched
    token = product_token(user_agent)
    pairs = parse_header_lines(headers)
    given = offline_inputs(robots_file, tdmrep_file, aitxt_file, pairs)
    if offline:
        inputs = given
    else:
        inputs = online_inputs(settings, url, token, now or utcnow(), pairs)
        inputs.robots = given.robots or inputs.robots
        inputs.aitxt = given.aitxt or inputs.aitxt
        inputs.tdmrep = given.tdmrep or inputs.tdmrep
    signals = focused_signals(url, token, inputs)
    return {
        "url": url,
        "user_agent": user_agent,
        "verdict": str(verdict(signals)),
        "signals": [s.to_json() for s in signals],
    }


# ------------------------------------------------------------------------------ history


def _history_rows(
    conn: Connection, subject: str, kind: SignalKind | None
) -> list[StoredObservation]:
    """A URL: its own observations, and those of a host document served at it (robots.txt,
    a license). A host: every host-scope observation; an origin: those it served."""
    if "://" in subject and names_path(subject):
        host_rows = [
            r
            for r in history(conn, Scope.HOST, host_of(subject), kind)
            if r.signal.source == subject
        ]
        rows = [*history(conn, Scope.URL, subject, kind), *host_rows]
    else:
        rows = history(
            conn, Scope.HOST, host_of(subject if "://" in subject else f"https://{subject}"), kind
        )
        if "://" in subject:
            prefix = origin_of(subject) + "/"
            rows = [r for r in rows if (r.signal.source or "").startswith(prefix)]
    return sorted(rows, key=lambda r: (r.observed_at, r.id))


def names_path(url: str) -> bool:
    """True when a URL names more than an origin (a path other than `/`, or a query)."""
    rest = url.split("://", 1)[1]
    path = rest.partition("/")[2]
    return bool(path.strip("/")) or "?" in rest


def observation_json(stored: StoredObservation, evidence: bool = True) -> dict[str, Any]:
    """One stored observation for `signals history --json`."""
    out = {
        "id": stored.id,
        "scope": str(stored.observation.scope),
        "subject": stored.observation.subject,
        "observed_at": iso(stored.observed_at),
        "expires_at": iso(stored.expires_at),
        **stored.signal.to_json(),
        "evidence_sha256": stored.evidence_sha256,
    }
    if evidence:
        out["evidence_excerpt"] = stored.evidence_excerpt
    return out


def signal_history(
    settings: Settings, subject: str, kind: SignalKind | None = None, as_of: str | None = None
) -> dict[str, Any]:
    """Every observation about a host (its robots.txt, ai.txt, tdmrep.json, RSL licenses) or
    a URL, oldest first; with `as_of`, also which observation per kind was current then."""
    when = _parse_as_of(as_of)
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            rows = _history_rows(conn, subject.strip(), kind)
    finally:
        engine.dispose()
    doc: dict[str, Any] = {"subject": subject, "observations": [observation_json(r) for r in rows]}
    if when is not None:
        current: dict[tuple[str, str, str | None], StoredObservation] = {}
        for r in rows:
            if r.observed_at <= when:
                current[(r.observation.subject, str(r.signal.kind), r.signal.source)] = r
        doc["as_of"] = iso(when)
        doc["current"] = [observation_json(r) for r in sorted(current.values(), key=lambda r: r.id)]
    return doc


def _parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise BadInput(f"--as-of must be an ISO-8601 time, got {text!r}") from exc
