"""The pure decision: (facts about one image, policy, now) -> include or not, and why.

Every rule returns its outcome with the evidence it used; an image is included exactly when no
rule gives a reason. How several sightings of one image combine (documented in
policies/README.md):
- exclusions (opt-outs, blocklists, denied domains) look at every sighting, whatever its status;
- "counted" sightings are those whose bytes we hold (status ok/fetched): they carry the license,
  the caption and the URL-level signals;
- license: one counted sighting under an allowed license (or from a trusted source) licenses the
  image, and the export cites it (trusted first, then the lowest sighting id);
- signals: fail closed, the worst status over every counted, non-trusted sighting wins; a
  sighting without a URL has no URL-level evidence, so it counts as `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from provenance.policy import model as m
from provenance.policy.facts import ObservationFacts, PolicyFacts, SightingFacts
from provenance.policy.model import Policy

# Status ranks, as the SQL compilation uses them: worst wins.
ALLOWED, UNKNOWN, RESERVED = 0, 1, 2
_RANK = {"allowed": ALLOWED, "unknown": UNKNOWN, "reserved": RESERVED}
_NAMES = {v: k for k, v in _RANK.items()}
INVALID_MARK = '"validation_state": "invalid"'


@dataclass(frozen=True)
class EvidenceRef:
    """A piece of evidence a rule used: what it is, its id, and when it was observed."""

    what: str
    ref: str | None = None
    observed_at: datetime | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Reason:
    """Why an image is excluded: a stable code, a human detail, and the evidence."""

    code: str
    detail: str
    evidence: tuple[EvidenceRef, ...] = ()


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict on one image (no reasons means the rule passed)."""

    rule: str
    detail: str
    reasons: tuple[Reason, ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Decision:
    """Include or not; `reasons` is empty exactly when included."""

    include: bool
    reasons: tuple[Reason, ...]
    cited_sighting_id: int | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    @property
    def optout_request_ids(self) -> tuple[int, ...]:
        """The opt-out requests that exclude the image (for revocation lists)."""
        return tuple(
            int(e.ref) for r in self.reasons if r.code == m.OPTED_OUT
            for e in r.evidence if e.ref is not None
        )


def decide(facts: PolicyFacts, policy: Policy, now: datetime) -> Decision:
    """Apply every rule of `policy` to one image at time `now`. Pure."""
    outcomes = evaluate_rules(facts, policy, now)
    reasons = tuple(r for o in outcomes for r in o.reasons)
    return Decision(not reasons, reasons, cited_sighting(facts, policy))


def evaluate_rules(facts: PolicyFacts, policy: Policy, now: datetime) -> tuple[RuleOutcome, ...]:
    """Every rule's outcome, in a fixed order (the order `policy explain` prints)."""
    rules: list[Callable[[PolicyFacts, Policy, datetime], RuleOutcome]] = [
        _optouts, _blocklists, _domains, _license,
    ]
    outcomes = [rule(facts, policy, now) for rule in rules]
    outcomes.extend(signal_outcome(facts, policy, kind, now) for kind in policy.signals.kinds)
    outcomes.append(_quality(facts, policy, now))
    return tuple(outcomes)


def counted(sightings: Iterable[SightingFacts]) -> list[SightingFacts]:
    """Sightings whose bytes we hold: the only evidence about the image's content."""
    return [s for s in sightings if s.status in m.COUNTED_STATUSES]


def host_matches(host: str | None, domain: str) -> bool:
    """`domain` itself or any subdomain of it."""
    return host is not None and (host == domain or host.endswith("." + domain))


def cited_sighting(facts: PolicyFacts, policy: Policy) -> int | None:
    """The sighting whose license (or contract) an export cites; None when unlicensed."""
    ok = counted(facts.sightings)
    trusted = sorted(s.id for s in ok if policy.trusted(s.source_name))
    if trusted:
        return trusted[0]
    licensed = sorted(s.id for s in ok if s.license_spdx in policy.licenses.allowed_spdx)
    return licensed[0] if licensed else None


def _optouts(facts: PolicyFacts, policy: Policy, now: datetime) -> RuleOutcome:
    hits = sorted(facts.optouts, key=lambda h: h.request_id)
    if not hits:
        return RuleOutcome("opt-outs", "no active opt-out request matches")
    ids = ", ".join(str(h.request_id) for h in hits)
    evidence = tuple(
        EvidenceRef("optout-request", str(h.request_id), None,
                    f"{h.how} {h.reference or ''}".strip())
        for h in hits
    )
    reason = Reason(m.OPTED_OUT, f"opt-out request {ids}", evidence)
    return RuleOutcome("opt-outs", f"matched by request {ids}", (reason,), evidence)


def blocklist_match(sighting: SightingFacts, kind: str, value: str) -> bool:
    """Whether one blocklist entry covers a sighting (domain with subdomains, or URL prefix)."""
    if kind == "domain":
        return host_matches(sighting.host, value)
    if kind == "url-prefix":
        return sighting.url is not None and sighting.url.startswith(value)
    return False


def _blocklists(facts: PolicyFacts, policy: Policy, now: datetime) -> RuleOutcome:
    hits = sorted({
        (e.list_name, e.version, e.kind, e.value)
        for e in facts.blocklist_entries for s in facts.sightings
        if blocklist_match(s, e.kind, e.value)
    })
    if not hits:
        return RuleOutcome("blocklists", "no sighting is on a blocklist")
    evidence = tuple(EvidenceRef("blocklist", f"{n}@{v}", None, f"{k} {val}")
                     for n, v, k, val in hits)
    detail = "; ".join(f"{k} {val} in {n} {v}" for n, v, k, val in hits)
    return RuleOutcome("blocklists", detail, (Reason(m.BLOCKLISTED, detail, evidence),), evidence)


def _domains(facts: PolicyFacts, policy: Policy, now: datetime) -> RuleOutcome:
    reasons: list[Reason] = []
    denied = sorted({s.host or "" for s in facts.sightings for d in policy.domains_deny
                     if host_matches(s.host, d)})
    if denied:
        reasons.append(Reason(m.DOMAIN_DENIED, f"seen on denied host(s) {', '.join(denied)}"))
    if policy.domains_allow:
        ok = counted(facts.sightings)
        if not any(policy.trusted(s.source_name) or any(host_matches(s.host, d)
                   for d in policy.domains_allow) for s in ok):
            reasons.append(Reason(m.DOMAIN_NOT_ALLOWED, "no counted sighting on an allowed domain"))
    detail = "; ".join(r.detail for r in reasons) or "domain lists pass"
    return RuleOutcome("domains", detail, tuple(reasons))


def _license(facts: PolicyFacts, policy: Policy, now: datetime) -> RuleOutcome:
    ok = counted(facts.sightings)
    evidence = tuple(
        EvidenceRef("sighting", str(s.id), None,
                    f"{s.license_spdx or '-'} ({s.license_raw or 'no license text'})")
        for s in sorted(ok, key=lambda s: s.id)
    )
    cite = cited_sighting(facts, policy)
    if cite is not None:
        cited = next(s for s in ok if s.id == cite)
        trusted = policy.trusted(cited.source_name)
        how = f"contract {trusted.contract}" if trusted else str(cited.license_spdx)
        return RuleOutcome("license", f"licensed by sighting {cite}: {how}", (), evidence)
    if any(s.license_spdx is not None for s in ok):
        ids = sorted({str(s.license_spdx) for s in ok if s.license_spdx is not None})
        reason = Reason(m.LICENSE_NOT_ALLOWED, f"license(s) not allowed: {', '.join(ids)}",
                        evidence)
    else:
        reason = Reason(m.LICENSE_UNKNOWN, "no counted sighting with a recognised license",
                        evidence)
    return RuleOutcome("license", reason.detail, (reason,), evidence)


def token_status(obs: ObservationFacts, tokens: Iterable[str]) -> int | None:
    """For a token-scoped observation: reserved if any policy token is reserved; unknown if any
    is unknown or in none of the lists; else allowed. None when the row has no token lists."""
    lists = (obs.tokens_reserved, obs.tokens_unknown, obs.tokens_allowed)
    if all(v is None for v in lists):
        return None
    res, unk, alw = ((v or "").lower() for v in lists)
    framed = [f",{t}," for t in tokens]
    if any(t in res for t in framed):
        return RESERVED
    if any(t in unk or not (t in res or t in alw) for t in framed):
        return UNKNOWN
    return ALLOWED


def observation_status(obs: ObservationFacts, policy: Policy) -> int:
    """The rank one observation contributes under this policy (see token_status, RSL, C2PA)."""
    if obs.kind == "rsl" and obs.source is not None and obs.source in policy.held_rsl_sources:
        return ALLOWED
    rank = token_status(obs, policy.signals.tokens)
    if rank is None:
        rank = _RANK.get(obs.status, UNKNOWN)
    if (rank == ALLOWED and obs.kind == "c2pa" and not policy.signals.c2pa_invalid_allowed_counts
            and INVALID_MARK in (obs.data or "").lower()):
        return UNKNOWN
    return rank


def _latest(facts: PolicyFacts) -> dict[tuple[str, str, str], ObservationFacts]:
    latest: dict[tuple[str, str, str], ObservationFacts] = {}
    for obs in facts.observations:
        have = latest.get(obs.key)
        if have is None or (obs.observed_at, obs.id) > (have.observed_at, have.id):
            latest[obs.key] = obs
    return latest


def signal_outcome(facts: PolicyFacts, policy: Policy, kind: str, now: datetime) -> RuleOutcome:
    """One signal kind: worst status over the evidence that applies, and its freshness."""
    latest = _latest(facts)
    ok = counted(facts.sightings)
    groups: list[list[ObservationFacts | None]] = []
    if kind in m.IMAGE_KINDS:
        if any((t := policy.trusted(s.source_name)) and t.covers_embedded for s in ok):
            return RuleOutcome(f"signal:{kind}", "not applicable: the contract covers it")
        groups.append([latest.get(("image", facts.sha256, kind))])
    else:
        untrusted = [s for s in ok if policy.trusted(s.source_name) is None]
        if not untrusted and len(ok) > 0:
            return RuleOutcome(f"signal:{kind}", "not applicable: trusted source")
        for s in untrusted:
            groups.append([latest.get(("url", s.url, kind)) if s.url else None,
                           latest.get(("host", s.host, kind)) if s.host else None])
    used = [o for g in groups for o in g if o is not None]
    ranks = [max((observation_status(o, policy) for o in g if o is not None), default=UNKNOWN)
             for g in groups]
    worst = max(ranks, default=UNKNOWN)
    evidence = tuple(EvidenceRef(f"signal {o.kind} {o.scope} {o.subject}", str(o.id), o.observed_at,
                                 f"{_NAMES[observation_status(o, policy)]}: {o.detail or o.status}")
                     for o in sorted(used, key=lambda o: o.id))
    reasons: list[Reason] = []
    if worst == RESERVED:
        reasons.append(Reason(m.signal_reserved(kind), f"{kind} reserves it", evidence))
    elif worst == UNKNOWN and kind not in policy.signals.unknown_allowed:
        why = "no evidence" if not used else "evidence unknown"
        reasons.append(Reason(m.signal_unknown(kind), f"{kind}: {why}", evidence))
    age = policy.signals.max_age_of(kind)
    stale = [o for o in used if age is not None and o.observed_at < now - age]
    if stale and age is not None:
        reasons.append(Reason(m.evidence_stale(kind), f"{kind} evidence older than {age.days} days",
                              tuple(e for e in evidence if e.ref in {str(o.id) for o in stale})))
    return RuleOutcome(f"signal:{kind}", f"{kind}: {_NAMES[worst]}", tuple(reasons), evidence)


def _quality(facts: PolicyFacts, policy: Policy, now: datetime) -> RuleOutcome:
    q = policy.quality
    w, h = facts.width, facts.height
    reasons: list[Reason] = []
    if (q.min_width is not None and (w is None or w < q.min_width)) or (
            q.min_height is not None and (h is None or h < q.min_height)):
        reasons.append(Reason(m.TOO_SMALL, f"{w}x{h} below {q.min_width}x{q.min_height}"))
    r = q.max_aspect_ratio
    if r is not None and (w is None or h is None or w <= 0 or h <= 0 or w > r * h or h > r * w):
        reasons.append(Reason(m.ASPECT_RATIO, f"{w}x{h} exceeds aspect ratio {r}"))
    if q.formats and (facts.format is None or facts.format.lower() not in q.formats):
        reasons.append(Reason(m.FORMAT, f"format {facts.format} not in {sorted(q.formats)}"))
    if q.require_decode_ok and not facts.decode_ok:
        reasons.append(Reason(m.DECODE_FAILED, "the bytes do not decode"))
    if q.require_caption and not any(s.caption is not None and s.caption.strip(" ") != ""
                                     for s in counted(facts.sightings)):
        reasons.append(Reason(m.NO_CAPTION, "no counted sighting has a caption"))
    if q.near_duplicate_distance is not None and facts.near_duplicate_of is not None:
        reasons.append(Reason(m.NEAR_DUPLICATE, f"near-duplicate of {facts.near_duplicate_of}",
                              (EvidenceRef("image", facts.near_duplicate_of),)))
    detail = "; ".join(r.detail for r in reasons) or f"{w}x{h} {facts.format} passes"
    return RuleOutcome("quality", detail, tuple(reasons))
