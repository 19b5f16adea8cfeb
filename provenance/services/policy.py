"""Policy use cases over a catalog. Stable interface for export, audit, opt-outs and reports:

- `evaluate_catalog(engine, policy, now, partition=, as_of=, workers=)` -> `CatalogEvaluation`:
  the included keys (sorted) and exclusion counts per reason, from the compiled SQL
  (set-based; the whole catalog in concurrent sha256 ranges);
- `decide_keys(engine, policy, keys, now, as_of=)` -> {sha256: Decision}: batched facts and the
  pure decision (audit, explain, revocations);
- `explain(engine, policy, key, now, as_of=)` -> `Explanation`: rule by rule with evidence.

`now` is the clock for evidence age; `as_of` (optional) ignores evidence recorded after it.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from provenance.db.engine import release_for_fork
from provenance.db.policy_evidence import kinds_present
from provenance.db.policy_facts import load_facts
from provenance.db.policy_sql import IMAGES, compile_policy, opted_out_keys
from provenance.db.policy_tokens import (
    BlocklistValues,
    TokenDecisions,
    blocklist_in_force,
    load_token_decisions,
    scan_tuning,
)
from provenance.domain import iso
from provenance.errors import BadInput
from provenance.policy import Decision, Policy, RuleOutcome, decide, evaluate_rules
from provenance.policy.dedup import near_duplicates
from provenance.policy.model import IMAGE_KINDS, NEAR_DUPLICATE, OPTED_OUT, URL_KINDS
from provenance.policy.rules import EvidenceRef, Reason, cited_sighting


@dataclass(frozen=True)
class CatalogEvaluation:
    """What a policy permits in (a partition of) the catalog.

    `excluded` counts each excluded image under every reason that applies, so the counts can
    sum to more than `excluded_total`.
    """

    policy_name: str
    policy_sha256: str
    total: int
    included: list[str]
    excluded: dict[str, int]
    excluded_total: int
    partition: tuple[int, int] | None = None
    as_of: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The `policy eval --json` document."""
        return {
            "policy": self.policy_name,
            "policy_sha256": self.policy_sha256,
            "partition": f"{self.partition[0]}/{self.partition[1]}" if self.partition else None,
            "as_of": iso(self.as_of),
            "total": self.total,
            "included": len(self.included),
            "excluded_total": self.excluded_total,
            "excluded": dict(sorted(self.excluded.items())),
        }


@dataclass(frozen=True)
class Explanation:
    """Why one image is in or out, rule by rule."""

    key: str
    policy_name: str
    policy_sha256: str
    decision: Decision
    rules: tuple[RuleOutcome, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The `policy explain --json` document."""
        return {
            "key": self.key,
            "policy": self.policy_name,
            "policy_sha256": self.policy_sha256,
            "include": self.decision.include,
            "cited_sighting": self.decision.cited_sighting_id,
            "reasons": [_reason_json(r) for r in self.decision.reasons],
            "rules": [
                {
                    "rule": o.rule,
                    "ok": o.ok,
                    "detail": o.detail,
                    "reasons": [r.code for r in o.reasons],
                    "evidence": [_evidence_json(e) for e in o.evidence],
                }
                for o in self.rules
            ],
        }


def _evidence_json(e: EvidenceRef) -> dict[str, Any]:
    return {"what": e.what, "ref": e.ref, "observed_at": iso(e.observed_at), "detail": e.detail}


def _reason_json(r: Reason) -> dict[str, Any]:
    return {"code": r.code, "detail": r.detail, "evidence": [_evidence_json(e) for e in r.evidence]}


def catalog_near_duplicates(conn: Connection, policy: Policy) -> dict[str, str]:
    """{sha256: representative} over the whole catalog, or {} when the policy does not dedup."""
    distance = policy.quality.near_duplicate_distance
    if distance is None:
        return {}
    rows = conn.execute(select(IMAGES.c.sha256, IMAGES.c.phash).where(IMAGES.c.phash.isnot(None)))
    return near_duplicates(((r.sha256, r.phash) for r in rows), distance)


def evaluation_workers(engine: Engine) -> int:
    """How many sha256 ranges a whole-catalog evaluation runs at once: one per core (at most
    4), each on its own connection; 1 for an in-memory SQLite catalog (one connection only)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class _Inputs:
    """Catalog values a compiled query is specialised on, read once for all its ranges."""

    tokens: TokenDecisions
    blocklist: BlocklistValues
    present: dict[str, list[str]]
    dups: dict[str, str]
    opted: set[str]


def _read_inputs(conn: Connection, policy: Policy, as_of: datetime | None) -> _Inputs:
    kinds = policy.signals.kinds
    return _Inputs(
        load_token_decisions(conn, policy.signals.tokens), blocklist_in_force(conn, as_of),
        {"url": kinds_present(conn, "url", [k for k in kinds if k in URL_KINDS]),
         "image": kinds_present(conn, "image", [k for k in kinds if k in IMAGE_KINDS])},
        catalog_near_duplicates(conn, policy), opted_out_keys(conn, as_of))


def _scan(engine: Engine, policy: Policy, now: datetime, partition: tuple[int, int] | None,
          as_of: datetime | None, inputs: _Inputs) -> tuple[list[str], Counter[int], int,
                                                           tuple[str, ...]]:
    """One range: its included keys (in query order), the count of each non-zero reason mask,
    its image count, and the reason code of each mask bit."""
    included: list[str] = []
    masks: Counter[int] = Counter()
    ambiguous: list[str] = []
    dups, opted = inputs.dups, inputs.opted

    def query(**how: Any) -> Any:
        return compile_policy(policy, now, inputs.tokens, inputs.blocklist, as_of=as_of,
                              partition=partition, dialect=conn.dialect.name,
                              present=inputs.present, **how)

    with engine.connect() as conn, scan_tuning(conn):
        compiled = query()
        opted_bit, dup_bit = 1 << len(compiled.codes), 2 << len(compiled.codes)
        host_masks: dict[int | None, int] = {}
        batches = _batches(conn, compiled.query)
        # Images the packed host form cannot decide are decided per kind, a batch at a time.
        for start in itertools.count(0, _BATCH):
            for rows in batches:
                excluded: list[int] = []
                # Per row only a mask test: reasons are decoded once per distinct mask by the
                # caller, and masks are counted a batch at a time.
                for sha, mask, unsure, hosts in rows:
                    if unsure:
                        ambiguous.append(sha)
                        continue
                    if hosts is not None:
                        if (bits := host_masks.get(hosts)) is None:
                            bits = host_masks[hosts] = compiled.hosts.mask(hosts)
                        mask |= bits
                    if sha in opted:
                        mask |= opted_bit
                    if sha in dups:
                        mask |= dup_bit
                    if mask:
                        excluded.append(mask)
                    else:
                        included.append(sha)
                masks.update(excluded)
            if start >= len(ambiguous):
                break
            batches = _batches(conn, query(pack_hosts=False,
                                           keys=ambiguous[start:start + _BATCH]).query)
    return (included, masks, len(included) + sum(masks.values()),
            (*compiled.codes, OPTED_OUT, NEAR_DUPLICATE))


_BATCH = 1000
_FETCH = 10_000


def _batches(conn: Connection, query: Any) -> Iterator[Sequence[tuple[Any, ...]]]:
    """The query's rows as plain tuples, a batch at a time. On SQLite the driver's own: its
    cursor streams by itself, the columns (text and integers) need no result processing, and
    at a million rows SQLAlchemy's per-row objects cost more CPU than the rest of the Python
    side of the scan (holding the GIL meanwhile). Elsewhere from a server-side cursor."""
    if conn.dialect.name != "sqlite":
        yield from conn.execute(query.execution_options(stream_results=True)).tuples().partitions(
            _FETCH)
        return
    result = conn.execute(query)
    cursor = result.cursor
    try:
        while batch := cursor.fetchmany(_FETCH):
            yield batch
    finally:
        result.close()


_ScanResult = tuple[list[str], Counter[int], int, tuple[str, ...]]
# What forked range scans inherit (set just before the fork, cleared after): never pickled.
# The lock keeps two evaluations in one process from sharing it.
_FORKED: dict[str, Any] = {}
_FORK_LOCK = threading.Lock()


def _ranges_in_processes(engine: Engine) -> bool:
    """Whether the ranges run in forked processes rather than threads: for a SQLite file on
    Linux, where SQLite works in this process. Two scans in one process contend for the GIL on
    every fetched batch and for SQLite's global allocator mutex (about a tenth of the CPU at
    1M images, by perf); in separate processes they share nothing. PostgreSQL does the work in
    its own server processes, so threads lose nothing there. Not from a daemonic process
    (which may have no children), nor while a connection of the engine is in use
    (`release_for_fork`)."""
    return (engine.dialect.name == "sqlite" and sys.platform.startswith("linux")
            and not multiprocessing.current_process().daemon)


def _forked_scans(engine: Engine, policy: Policy, now: datetime,
                  ranges: Sequence[tuple[int, int] | None], as_of: datetime | None,
                  inputs: _Inputs) -> list[_ScanResult]:
    with _FORK_LOCK:
        _FORKED["args"] = (engine, policy, now, as_of, inputs)
        try:
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(len(ranges), mp_context=fork,
                                     initializer=_start_scan_process) as pool:
                return list(pool.map(_scan_in_process, ranges))
        finally:
            _FORKED.clear()


def _start_scan_process() -> None:
    # The parent's pooled connections stay the parent's; this process opens its own.
    _FORKED["args"][0].dispose(close=False)


def _scan_in_process(part: tuple[int, int] | None) -> _ScanResult:
    engine, policy, now, as_of, inputs = _FORKED["args"]
    return _scan(engine, policy, now, part, as_of, inputs)


def evaluate_catalog(
    engine: Engine,
    policy: Policy,
    now: datetime,
    *,
    partition: tuple[int, int] | None = None,
    as_of: datetime | None = None,
    workers: int | None = None,
) -> CatalogEvaluation:
    """Decide every image of the catalog (or of one partition) with the compiled SQL.

    The token decisions, blocklist, kinds present and near-duplicates are read first, once;
    then the whole catalog is evaluated as `workers` sha256 ranges at once (default:
    `evaluation_workers`), each in a thread with its own connection: the database does the
    work with the GIL released (a SQLite file on Linux: a forked process each, see
    `_ranges_in_processes`). The ranges are merged in key order, so the result is the same as
    from one range."""
    with engine.connect() as conn, scan_tuning(conn):
        inputs = _read_inputs(conn, policy, as_of)
    n = evaluation_workers(engine) if workers is None else workers
    ranges = [partition] if partition is not None or n <= 1 else [(i, n) for i in range(n)]
    if len(ranges) == 1:
        parts = [_scan(engine, policy, now, ranges[0], as_of, inputs)]
    elif _ranges_in_processes(engine) and release_for_fork(engine):
        parts = _forked_scans(engine, policy, now, ranges, as_of, inputs)
    else:
        with ThreadPoolExecutor(len(ranges)) as pool:
            parts = list(pool.map(lambda r: _scan(engine, policy, now, r, as_of, inputs),
                                  ranges))
    included = [sha for part in parts for sha in part[0]]
    masks: Counter[int] = Counter()
    for part in parts:
        masks.update(part[1])
    counts: Counter[str] = Counter()
    for mask, n_images in masks.items():
        for i, code in enumerate(parts[0][3]):
            if mask >> i & 1:
                counts[code] += n_images
    included.sort()
    return CatalogEvaluation(
        policy.name, policy.sha256, sum(part[2] for part in parts), included,
        dict(sorted(counts.items())),
        sum(masks.values()), partition, as_of
    )


def decide_keys(
    engine: Engine,
    policy: Policy,
    keys: Sequence[str],
    now: datetime,
    *,
    as_of: datetime | None = None,
) -> dict[str, Decision]:
    """Decisions for full sha256 keys; keys not in the catalog are absent from the result."""
    with engine.connect() as conn:
        dups = catalog_near_duplicates(conn, policy)
        facts = load_facts(conn, policy, keys, as_of=as_of, near_duplicates=dups)
    return {sha: decide(f, policy, now) for sha, f in sorted(facts.items())}


def resolve_key(conn: Connection, key: str) -> str:
    """A full sha256 from a full key or a unique prefix; BadInput otherwise."""
    prefix = key.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise BadInput(f"not an image key (hex sha256 or a prefix of one): {key!r}")
    found = list(
        conn.execute(
            select(IMAGES.c.sha256)
            .where(IMAGES.c.sha256.startswith(prefix))
            .order_by(IMAGES.c.sha256)
            .limit(2)
        ).scalars()
    )
    if not found:
        raise BadInput(f"no image with key {key!r} in the catalog")
    if len(found) > 1:
        raise BadInput(f"key prefix {key!r} is ambiguous; give more characters")
    return str(found[0])


def explain(
    engine: Engine, policy: Policy, key: str, now: datetime, *, as_of: datetime | None = None
) -> Explanation:
    """Rule-by-rule explanation for one image (sha256 or unique prefix)."""
    with engine.connect() as conn:
        sha = resolve_key(conn, key)
        dups = catalog_near_duplicates(conn, policy)
        facts = load_facts(conn, policy, [sha], as_of=as_of, near_duplicates=dups)[sha]
    rules = evaluate_rules(facts, policy, now)
    reasons = tuple(r for o in rules for r in o.reasons)
    decision = Decision(not reasons, reasons, cited_sighting(facts, policy))
    return Explanation(sha, policy.name, policy.sha256, decision, rules)
