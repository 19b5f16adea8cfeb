"""Everything the rules need to know about one image, loaded by `db/policy_sql.py`. Pure data.

The decision is a function of these facts alone, so the same facts always give the same
decision: what the loader does not put here cannot influence it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SightingFacts:
    """One sighting of the image (any status; the rules decide which count for what)."""

    id: int
    status: str
    url: str | None = None
    host: str | None = None
    domain: str | None = None
    source_name: str | None = None
    license_spdx: str | None = None
    license_raw: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class ObservationFacts:
    """One stored signal observation (a row of `signals`)."""

    id: int
    scope: str
    subject: str
    kind: str
    status: str
    observed_at: datetime
    tokens_reserved: str | None = None
    tokens_unknown: str | None = None
    tokens_allowed: str | None = None
    source: str | None = None
    detail: str | None = None
    data: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scope, self.subject, self.kind)

    def extra(self) -> dict[str, Any]:
        """The kind-specific facts the signal store kept (e.g. C2PA `validation_state`)."""
        try:
            parsed = json.loads(self.data) if self.data else {}
        except ValueError:
            return {}
        extra = parsed.get("extra") if isinstance(parsed, dict) else None
        return extra if isinstance(extra, dict) else {}


@dataclass(frozen=True)
class OptOutHit:
    """An active opt-out request that matched the image or one of its sightings."""

    request_id: int
    how: str
    reference: str | None = None
    requester: str | None = None


@dataclass(frozen=True)
class BlocklistEntryFacts:
    """A blocklist entry that may match one of the image's sightings (the rules decide)."""

    list_name: str
    version: str
    kind: str  # domain | url-prefix
    value: str


@dataclass(frozen=True)
class PolicyFacts:
    """One image and what the catalog knows about it.

    `observations` holds the latest observation per (scope, subject, kind) for the image's
    URLs, hosts and the image itself (as of the evaluation time); if several rows share a key
    the rules use the newest (observed_at, then id). `near_duplicate_of` is the smallest sha256
    of another catalogued image within the policy's Hamming distance, computed catalog-wide by
    `provenance.policy.dedup`.
    """

    sha256: str
    decode_ok: bool
    width: int | None = None
    height: int | None = None
    format: str | None = None
    phash: str | None = None
    sightings: tuple[SightingFacts, ...] = ()
    observations: tuple[ObservationFacts, ...] = ()
    optouts: tuple[OptOutHit, ...] = ()
    blocklist_entries: tuple[BlocklistEntryFacts, ...] = ()
    near_duplicate_of: str | None = None
