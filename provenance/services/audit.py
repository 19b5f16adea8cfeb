"""The pre-training audit: shards and image folders on disk against the catalog and a policy.

Samples are hashed as they stream past (provenance.audit) and decided in batches: one catalog
lookup and one policy evaluation per `BATCH` keys, with the near-duplicate index (when the
policy dedups) built once per audit. Opt-outs and license changes recorded since an export are
in the catalog, so an audit as of now catches revoked samples too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from provenance import audit as scan
from provenance.config import Settings
from provenance.db.policy_facts import load_facts
from provenance.domain import utcnow
from provenance.eventlog import append_event
from provenance.policy import Decision, Policy, decide, default_policy_path, load_policy
from provenance.policy.model import OPTED_OUT
from provenance.services.catalog import open_catalog
from provenance.services.policy import catalog_near_duplicates

BATCH = 1000
EXAMPLES_PER_REASON = 5


@dataclass(frozen=True)
class Violation:
    """One finding about one sample."""

    key: str
    shard: str
    reason: str
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "shard": self.shard, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class AuditReport:
    """What was audited and what was found; the exit code follows from `clean`."""

    samples: int
    ok: int
    violations: tuple[Violation, ...]
    policy_name: str
    policy_sha256: str
    paths: tuple[str, ...] = field(default_factory=tuple)

    @property
    def clean(self) -> bool:
        return not self.violations

    def by_reason(self) -> dict[str, list[Violation]]:
        """Violations grouped by reason, most frequent first, then by name."""
        groups: dict[str, list[Violation]] = {}
        for violation in self.violations:
            groups.setdefault(violation.reason, []).append(violation)
        return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))

    def to_json(self) -> dict[str, Any]:
        """The `audit --json` document (CLI.md)."""
        return {
            "samples": self.samples,
            "ok": self.ok,
            "violations": [v.to_json() for v in self.violations],
        }


def _decision_violation(sample: scan.ScannedSample, decision: Decision | None) -> Violation | None:
    sha = sample.sha256
    named = "" if sample.key == sha else f"sha256 {sha}: "
    if decision is None:
        return Violation(sample.key, sample.shard, scan.UNKNOWN, f"{named}not in the catalog")
    if decision.include:
        return None
    if OPTED_OUT in decision.codes:
        ids = ", ".join(str(i) for i in sorted(set(decision.optout_request_ids)))
        return Violation(sample.key, sample.shard, scan.OPTED_OUT,
                         f"{named}opt-out request(s) {ids}" if ids else f"{named}opted out")
    return Violation(sample.key, sample.shard, scan.NOT_PERMITTED,
                     named + ", ".join(dict.fromkeys(decision.codes)))


def sample_violations(sample: scan.ScannedSample, decisions: dict[str, Decision]
                      ) -> list[Violation]:
    """Every finding for one scanned sample, given the decisions for its batch."""
    if sample.problem is not None:
        return [Violation(sample.key, sample.shard, sample.problem, sample.detail)]
    found: list[Violation] = []
    assert sample.sha256 is not None  # scanned without a problem means hashed
    if sample.claimed is not None and sample.claimed != sample.sha256:
        found.append(Violation(sample.key, sample.shard, scan.HASH_MISMATCH,
                               f"bytes hash to {sample.sha256}"))
    violation = _decision_violation(sample, decisions.get(sample.sha256))
    if violation is not None:
        found.append(violation)
    return found


def _batches(samples: Iterator[scan.ScannedSample]) -> Iterator[list[scan.ScannedSample]]:
    batch: list[scan.ScannedSample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _decide(engine: Engine, policy: Policy, samples: Iterator[scan.ScannedSample],
            now: datetime) -> tuple[int, int, list[Violation]]:
    total = ok = 0
    violations: list[Violation] = []
    with engine.connect() as conn:
        dups = catalog_near_duplicates(conn, policy)
        for batch in _batches(samples):
            keys = sorted({s.sha256 for s in batch if s.sha256 is not None})
            facts = load_facts(conn, policy, keys, near_duplicates=dups)
            decisions = {sha: decide(f, policy, now) for sha, f in facts.items()}
            for sample in batch:
                found = sample_violations(sample, decisions)
                total += 1
                ok += not found
                violations.extend(found)
    return total, ok, violations


def _event_payload(report: AuditReport, partition: tuple[int, int] | None) -> dict[str, Any]:
    counts = Counter(v.reason for v in report.violations)
    return {
        "paths": list(report.paths),
        "partition": f"{partition[0]}/{partition[1]}" if partition else None,
        "policy": report.policy_name,
        "policy_sha256": report.policy_sha256,
        "samples": report.samples,
        "ok": report.ok,
        "violations": dict(sorted(counts.items())),
    }


def run_audit(
    settings: Settings,
    paths: Sequence[Path],
    policy_path: Path | None = None,
    partition: tuple[int, int] | None = None,
    max_member_bytes: int = scan.DEFAULT_MAX_MEMBER_BYTES,
) -> AuditReport:
    """Audit shards/folders (or slice I of N of them); record an `audit` event."""
    policy = load_policy(policy_path or default_policy_path())
    targets = scan.in_partition(scan.collect_targets(paths), partition)
    engine = open_catalog(settings)
    try:
        now = utcnow()
        total, ok, violations = _decide(engine, policy, scan.scan(targets, max_member_bytes), now)
        report = AuditReport(total, ok, tuple(violations), policy.name, policy.sha256,
                             tuple(str(p.resolve()) for p in paths))
        with engine.begin() as conn:
            append_event(conn, "audit", _event_payload(report, partition), utcnow())
        return report
    finally:
        engine.dispose()
