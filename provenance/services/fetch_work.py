"""What happens to one pending URL on a worker thread: the signal check before any request,
the GET, the response checks, and hashing and storing the bytes. Returns data; the caller
(services.fetch) writes it to the catalog. No catalog access here.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from provenance.domain import ImageFacts, Signal, SignalKind, SignalStatus
from provenance.ingest.analyze import analyze_bytes
from provenance.net import HttpResult, SafeHttp
from provenance.services.host_signals import HostDocs
from provenance.store import ContentStore

FETCHED = "fetched"
SKIPPED_RESERVED = "skipped-reserved"
SKIPPED_UNKNOWN = "skipped-unknown"
SKIPPED_BLOCKLISTED = "skipped-blocklisted"
SKIPPED_OPTOUT = "skipped-optout"
FAILED = "failed"
RETRY = "retry"  # a transient failure; the sighting stays pending and is tried again

IMAGE_TYPES = ("image/", "application/octet-stream")
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
# A Retry-After longer than this ends the URL's attempts for this run (it stays failed with
# the reason) instead of parking a worker slot for an unbounded time.
MAX_RETRY_AFTER_S = 120.0
KIND_LABELS = {
    SignalKind.ROBOTS: "robots.txt",
    SignalKind.X_ROBOTS_TAG: "X-Robots-Tag",
    SignalKind.TDMREP: "TDMRep",
    SignalKind.AI_TXT: "ai.txt",
    SignalKind.CONTENT_SIGNAL: "Content-Signal",
    SignalKind.CONTENT_USAGE: "Content-Usage",
    SignalKind.RSL: "RSL",
}


@dataclass(frozen=True)
class Job:
    """One pending sighting to fetch; `attempt` counts from 1."""

    sighting_id: int
    url: str
    origin: str
    attempt: int = 1


@dataclass(frozen=True)
class WorkResult:
    """The outcome of one attempt. `response` is None when no request was made; a 2xx
    `response` means URL-level signals were read from its headers."""

    job: Job
    outcome: str
    reason: str | None = None
    response: HttpResult | None = None
    facts: ImageFacts | None = None
    retry_in: float | None = None  # seconds until the retry may start (RETRY only)

    @property
    def headers_seen(self) -> bool:
        return self.response is not None and self.response.ok


@dataclass(frozen=True)
class WorkContext:
    """Everything a worker needs, shared by all threads (all members are thread-safe)."""

    http: SafeHttp
    store: ContentStore
    tokens: tuple[str, ...]
    max_bytes: int
    max_attempts: int


def _label(signal: Signal) -> str:
    return f"{KIND_LABELS.get(signal.kind, str(signal.kind))}: {signal.detail}".rstrip(": ")


def gate(signals: Sequence[Signal], *, before_request: bool) -> tuple[str, str] | None:
    """(outcome, reason) when the URL must not be fetched or kept, else None.

    Before the request X-Robots-Tag cannot be known yet and is left to the response; any
    other kind that is reserved, or that could not be checked (e.g. robots.txt unreachable,
    which RFC 9309 section 2.3.1.4 says to treat as a complete disallow), skips the URL.
    After the response only a reservation stops it: what stays unknown is recorded and
    left to the export policy.
    """
    considered = [s for s in signals if not (before_request and s.kind is SignalKind.X_ROBOTS_TAG)]
    reserved = [s for s in considered if s.status is SignalStatus.RESERVED]
    if reserved:
        return SKIPPED_RESERVED, "reserved by " + "; ".join(_label(s) for s in reserved)
    unknown = [s for s in considered if s.status is SignalStatus.UNKNOWN]
    if before_request and unknown:
        return SKIPPED_UNKNOWN, "not checkable: " + "; ".join(_label(s) for s in unknown)
    return None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter: up to 0.5 s, 1 s, 2 s, ... capped at 30 s."""
    ceiling: float = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _transient(ctx: WorkContext, job: Job, resp: HttpResult, now: datetime) -> WorkResult:
    reason = resp.error or f"HTTP {resp.status}"
    if job.attempt >= ctx.max_attempts:
        return WorkResult(job, FAILED, f"{reason} (after {job.attempt} attempts)", resp)
    wait = backoff_seconds(job.attempt)
    if resp.status in (429, 503):
        asked = retry_after_seconds(resp.header("retry-after"), now)
        if asked is not None and asked > MAX_RETRY_AFTER_S:
            return WorkResult(job, FAILED, f"{reason}, Retry-After {asked:.0f} s is too long", resp)
        wait = max(wait, asked or 0.0)
    return WorkResult(job, RETRY, reason, resp, retry_in=wait)


def _content_type_ok(resp: HttpResult) -> bool:
    ctype = (resp.header("content-type") or "").strip().lower()
    # No Content-Type at all: the decode check below decides.
    return not ctype or ctype.startswith(IMAGE_TYPES)


def fetch_one(ctx: WorkContext, job: Job, docs: HostDocs, now: datetime) -> WorkResult:
    """Check the URL's signals, GET it if allowed, and hash and store an image worth keeping."""
    skip = gate(docs.signals_for(job.url, ctx.tokens, None), before_request=True)
    if skip is not None:
        return WorkResult(job, skip[0], skip[1])
    resp = ctx.http.get(job.url, max_bytes=ctx.max_bytes)
    if resp.transient:
        return _transient(ctx, job, resp, now)
    if resp.error is not None:
        return WorkResult(job, FAILED, resp.error, resp)
    if not resp.ok:
        return WorkResult(job, FAILED, f"HTTP {resp.status}", resp)
    # The response's own headers (X-Robots-Tag: noai, tdm-reservation: 1, ...) can still
    # reserve it: then the bytes are neither hashed into the catalog nor kept.
    reserved = gate(docs.signals_for(job.url, ctx.tokens, resp.headers), before_request=False)
    if reserved is not None:
        return WorkResult(job, reserved[0], reserved[1], resp)
    if not _content_type_ok(resp):
        ctype = resp.header("content-type")
        return WorkResult(job, FAILED, f"not an image (Content-Type {ctype})", resp)
    facts = analyze_bytes(resp.body, resp.header("content-type"))
    if facts.format is None or not facts.decode_ok:
        return WorkResult(job, FAILED, facts.error or "not an image", resp)
    ctx.store.put(resp.body)
    return WorkResult(job, FETCHED, None, resp, facts)
