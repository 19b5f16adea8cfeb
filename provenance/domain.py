"""Frozen value types shared by every layer. No I/O here."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class SignalStatus(enum.StrEnum):
    """Tri-state of every rights signal. `unknown` is never treated as allowed by default."""

    ALLOWED = "allowed"
    RESERVED = "reserved"
    UNKNOWN = "unknown"


class SignalKind(enum.StrEnum):
    ROBOTS = "robots"
    X_ROBOTS_TAG = "x-robots-tag"
    TDMREP = "tdmrep"
    AI_TXT = "ai-txt"
    CONTENT_SIGNAL = "content-signal"
    CONTENT_USAGE = "content-usage"
    RSL = "rsl"
    C2PA = "c2pa"
    IPTC = "iptc"


# Signals read from a URL or its host (checked over the network or from given files) versus
# signals embedded in the image bytes. Trusted sources skip the URL-level ones.
URL_LEVEL_KINDS: tuple[SignalKind, ...] = (
    SignalKind.ROBOTS,
    SignalKind.X_ROBOTS_TAG,
    SignalKind.TDMREP,
    SignalKind.AI_TXT,
    SignalKind.CONTENT_SIGNAL,
    SignalKind.CONTENT_USAGE,
    SignalKind.RSL,
)
IMAGE_LEVEL_KINDS: tuple[SignalKind, ...] = (SignalKind.C2PA, SignalKind.IPTC)


class Scope(enum.StrEnum):
    """What an observation is about: a host (robots.txt), a URL (headers) or image bytes."""

    HOST = "host"
    URL = "url"
    IMAGE = "image"


def worst_status(statuses: list[SignalStatus] | tuple[SignalStatus, ...]) -> SignalStatus:
    """Combine statuses fail-closed: any reserved wins, then any unknown, else allowed.

    An empty input is `unknown`: nothing was checked.
    """
    if not statuses:
        return SignalStatus.UNKNOWN
    if SignalStatus.RESERVED in statuses:
        return SignalStatus.RESERVED
    if SignalStatus.UNKNOWN in statuses:
        return SignalStatus.UNKNOWN
    return SignalStatus.ALLOWED


@dataclass(frozen=True)
class Signal:
    """One parsed signal, as a pure parser returns it.

    `tokens` maps a user-agent token (lower-case) to its verdict where the signal is
    token-scoped (robots.txt, ai.txt, UA-scoped X-Robots-Tag, Content-Signal groups); `status`
    is then the combined verdict over the tokens evaluated. `extra` holds kind-specific facts
    that reports and JSON output need (e.g. TDMRep `reservation` and `policy`, C2PA
    `validation_state`). `evidence` is the raw text the verdict was read from.
    """

    kind: SignalKind
    status: SignalStatus
    detail: str = ""
    source: str | None = None
    tokens: Mapping[str, SignalStatus] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    evidence: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The CLI.md shape: kind, status, detail, source, then kind-specific fields."""
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "status": str(self.status),
            "detail": self.detail,
            "source": self.source,
        }
        if self.tokens:
            out["tokens"] = {k: str(v) for k, v in sorted(self.tokens.items())}
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass(frozen=True)
class Observation:
    """A signal as observed about one subject at one time: what the catalog stores."""

    scope: Scope
    subject: str  # host name, URL or image sha256
    signal: Signal
    observed_at: datetime
    expires_at: datetime | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class LicenseInfo:
    """A license string or URL mapped to SPDX and its permission facts."""

    input: str
    spdx_id: str | None
    recognized: bool
    family: str | None = None
    version: str | None = None
    commercial_use: bool | None = None
    derivatives: bool | None = None
    attribution: bool | None = None
    share_alike: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "spdx_id": self.spdx_id,
            "recognized": self.recognized,
            "family": self.family,
            "version": self.version,
            "commercial_use": self.commercial_use,
            "derivatives": self.derivatives,
            "attribution": self.attribution,
            "share_alike": self.share_alike,
        }


@dataclass(frozen=True)
class ImageFacts:
    """What hashing and decoding one image's bytes tells us."""

    sha256: str
    byte_size: int
    decode_ok: bool
    phash: str | None = None
    phash_alg: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None
    signals: tuple[Signal, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)


def utcnow() -> datetime:
    """Timezone-aware now in UTC (the only clock; pure code takes `now` as a parameter)."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO-8601 with `Z`, second precision unless sub-second detail exists."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    text = ts.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse ISO-8601 (with `Z` or an offset, or a bare date) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
