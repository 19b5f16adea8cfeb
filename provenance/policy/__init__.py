"""Policies as code: load a policy file, decide one image purely, explain rule by rule.

Public API (stable; export, audit, opt-outs and reports rely on it):
`load_policy`, `parse_policy`, `default_policy_path`, `Policy`, `PolicyFacts` and its parts,
`decide`, `evaluate_rules`, `Decision`, `Reason`, `RuleOutcome`, `EvidenceRef`, the reason
codes in `provenance.policy.model`, and `near_duplicates`.
"""

from provenance.policy.dedup import near_duplicates
from provenance.policy.facts import (
    BlocklistEntryFacts,
    ObservationFacts,
    OptOutHit,
    PolicyFacts,
    SightingFacts,
)
from provenance.policy.loader import default_policy_path, load_policy, parse_policy
from provenance.policy.model import Policy
from provenance.policy.rules import (
    Decision,
    EvidenceRef,
    Reason,
    RuleOutcome,
    decide,
    evaluate_rules,
)

__all__ = [
    "BlocklistEntryFacts",
    "Decision",
    "EvidenceRef",
    "ObservationFacts",
    "OptOutHit",
    "Policy",
    "PolicyFacts",
    "Reason",
    "RuleOutcome",
    "SightingFacts",
    "decide",
    "default_policy_path",
    "evaluate_rules",
    "load_policy",
    "near_duplicates",
    "parse_policy",
]
