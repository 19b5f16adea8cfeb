"""The typed form of a policy file and the stable reason codes decisions are made of. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from provenance.domain import IMAGE_LEVEL_KINDS, URL_LEVEL_KINDS, SignalKind

# Stable reason codes (exports, audits and reports count by them; never rename one).
OPTED_OUT = "opted-out"
BLOCKLISTED = "blocklisted"
DOMAIN_DENIED = "domain-denied"
DOMAIN_NOT_ALLOWED = "domain-not-allowed"
LICENSE_UNKNOWN = "license-unknown"
LICENSE_NOT_ALLOWED = "license-not-allowed"
TOO_SMALL = "too-small"
ASPECT_RATIO = "aspect-ratio"
FORMAT = "format"
DECODE_FAILED = "decode-failed"
NO_CAPTION = "no-caption"
NEAR_DUPLICATE = "near-duplicate"


def signal_reserved(kind: str) -> str:
    """Reason code: the latest evidence of `kind` reserves the image (`signal-reserved:robots`)."""
    return f"signal-reserved:{kind}"


def signal_unknown(kind: str) -> str:
    """Reason code: `kind` was not checked, could not be read, or states nothing usable."""
    return f"signal-unknown:{kind}"


def evidence_stale(kind: str) -> str:
    """Reason code: the evidence used for `kind` is older than the policy's maximum age."""
    return f"evidence-stale:{kind}"


ALL_KINDS: tuple[str, ...] = tuple(str(k) for k in SignalKind)
URL_KINDS: frozenset[str] = frozenset(str(k) for k in URL_LEVEL_KINDS)
IMAGE_KINDS: frozenset[str] = frozenset(str(k) for k in IMAGE_LEVEL_KINDS)
# Sighting statuses whose bytes we hold: only these count as evidence about an image.
COUNTED_STATUSES: tuple[str, ...] = ("ok", "fetched")


@dataclass(frozen=True)
class LicenseRule:
    """Which licenses permit use. `allowed_spdx` is the expanded, exact set of SPDX ids."""

    allow: tuple[str, ...]
    commercial_use: bool | None
    derivatives: bool | None
    attribution: bool
    share_alike: bool
    allowed_spdx: frozenset[str]


@dataclass(frozen=True)
class SignalRule:
    """Which signal kinds count and how their evidence is read."""

    tokens: tuple[str, ...]
    kinds: tuple[str, ...]
    unknown_allowed: frozenset[str]  # kinds whose `unknown` the policy accepts
    max_age: tuple[tuple[str, timedelta], ...]  # (kind, age), sorted by kind
    c2pa_invalid_allowed_counts: bool

    def max_age_of(self, kind: str) -> timedelta | None:
        """The evidence age limit for a kind, or None when any age is accepted."""
        for name, age in self.max_age:
            if name == kind:
                return age
        return None


@dataclass(frozen=True)
class QualityRule:
    """Dataset-cleaning filters; None or empty disables a filter."""

    min_width: int | None = None
    min_height: int | None = None
    max_aspect_ratio: float | None = None
    formats: frozenset[str] = frozenset()
    require_decode_ok: bool = True
    require_caption: bool = False
    near_duplicate_distance: int | None = None


@dataclass(frozen=True)
class TrustedSource:
    """A source held under contract: URL-level signals do not apply to its sightings."""

    source_name: str
    contract: str
    covers_embedded: bool = False


@dataclass(frozen=True)
class HeldRslLicense:
    """An RSL license the team holds: observations read from it count as allowed."""

    source: str
    reference: str


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy: its verbatim text and hash (for lineage) and typed rules."""

    name: str
    description: str
    text: str
    sha256: str
    path: str
    licenses: LicenseRule
    signals: SignalRule
    quality: QualityRule
    domains_allow: tuple[str, ...] = ()
    domains_deny: tuple[str, ...] = ()
    trusted_sources: tuple[TrustedSource, ...] = ()
    rsl_licenses: tuple[HeldRslLicense, ...] = field(default_factory=tuple)

    def trusted(self, source_name: str | None) -> TrustedSource | None:
        """The trusted-source entry for a sighting's source name, if any."""
        for entry in self.trusted_sources:
            if source_name is not None and entry.source_name == source_name:
                return entry
        return None

    @property
    def held_rsl_sources(self) -> frozenset[str]:
        return frozenset(entry.source for entry in self.rsl_licenses)
