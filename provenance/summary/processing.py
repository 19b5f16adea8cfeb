"""Sections 2.3 (crawling) and 3.1-3.3 (data processing) as facts and counts. Pure."""

from __future__ import annotations

from collections import Counter
from typing import Any

from provenance.db.summary_queries import SummaryFacts
from provenance.domain import iso
from provenance.errors import BadInput
from provenance.policy import parse_policy
from provenance.summary.about import About
from provenance.summary.behaviour import BEHAVIOUR, product_token
from provenance.summary.sources import narrative_or_todo, period, share, todo, top_domains, yes_no
from provenance.summary.template import TopDomainRule

SIGNAL_PREFIXES = ("signal-reserved:", "signal-unknown:", "evidence-stale:")
OPTED_OUT = "opted-out"
BLOCKLISTED = "blocklisted"
NEAR_DUPLICATE = "near-duplicate"
FETCH_SKIPS = ("skipped-reserved", "skipped-unknown", "skipped-optout", "skipped-blocklisted")


def excluded_totals(facts: SummaryFacts) -> Counter[str]:
    """Exclusion counts by reason, summed over the exports (an image excluded for several
    reasons counts under each, as `export` reports them)."""
    total: Counter[str] = Counter()
    for export in facts.exports:
        total.update(export.excluded)
    return total


def crawl_section(about: About, facts: SummaryFacts, rule: TopDomainRule,
                  classes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """2.3: crawlers actually used, their periods, behaviour facts and the top domains."""
    own = classes.get("own-crawl", [])
    used = facts.crawled_images > 0 or bool(own)
    crawlers = [
        {"user_agent": ua, "token": product_token(ua or ""), "images": n, "period": period(lo, hi)}
        for ua, n, lo, hi in facts.crawlers
    ]
    purposes = about.crawler.get("purposes")
    return {
        "used": yes_no(used),
        "crawlers": crawlers,
        "own_crawl_sources": own,
        "crawled_images": facts.crawled_images,
        "purposes": purposes or (todo("purposes of the crawler(s)") if used else None),
        "behaviour": list(BEHAVIOUR) if crawlers else (
            todo("behaviour of crawlers run outside provenance (robots.txt, paywalls, captchas)")
            if used else None),
        "period": period(min((c[2] for c in facts.crawlers if c[2]), default=None),
                         max((c[3] for c in facts.crawlers if c[3]), default=None)),
        "content_description": narrative_or_todo(
            about, "crawled_content", "type of content and online sources crawled", needed=used),
        "top_domains": top_domains(facts, rule, about.sme),
    }


def _policies(facts: SummaryFacts) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for export in facts.exports:
        entry: dict[str, Any] = {"export_id": export.id, "policy": export.policy_name,
                                 "policy_sha256": export.policy_sha256}
        try:
            policy = parse_policy(export.policy_text, f"export {export.id} policy")
        except BadInput as exc:
            entry["error"] = f"policy text unreadable: {exc}"
            out.append(entry)
            continue
        entry["tokens"] = list(policy.signals.tokens)
        entry["signal_kinds"] = list(policy.signals.kinds)
        entry["evidence_max_age_days"] = {k: age.days for k, age in policy.signals.max_age}
        out.append(entry)
    return out


def rights_section(about: About, facts: SummaryFacts) -> dict[str, Any]:
    """3.1: each signal kind checked and what it excluded, opt-outs, freshness limits."""
    excluded = excluded_totals(facts)
    checks: dict[str, dict[str, int]] = {}
    for kind, status, n in facts.signal_checks:
        checks.setdefault(kind, {})[status] = n
    kinds = sorted(set(checks) | {r.split(":", 1)[1] for r in excluded
                                  if r.startswith(SIGNAL_PREFIXES)})
    per_kind = [
        {"signal": kind, "observations": checks.get(kind, {}),
         "images_excluded_reserved": excluded.get(f"signal-reserved:{kind}", 0),
         "images_excluded_unknown": excluded.get(f"signal-unknown:{kind}", 0),
         "images_excluded_stale": excluded.get(f"evidence-stale:{kind}", 0)}
        for kind in kinds
    ]
    outcomes = dict(facts.fetch_outcomes)
    requests = [{"scope": k, "status": st, "requests": n} for k, st, n in facts.optout_requests]
    signatory = about.provider.get("code_of_practice_signatory")
    return {
        "code_of_practice_signatory": yes_no(signatory) if signatory is not None else todo(
            "whether the provider signed the GPAI Code of Practice"),
        "signals": per_kind,
        "urls_not_fetched": {o: outcomes.get(o, 0) for o in FETCH_SKIPS},
        "optout_requests": requests,
        "images_excluded_opted_out": excluded.get(OPTED_OUT, 0),
        "policies": _policies(facts),
        "retroactive_optouts": (
            f"Opt-out requests apply to past exports too: {facts.optout_matched_now:,} image(s) "
            "of these exports are matched by an active request today and are revoked "
            "(`provenance exports revocations ID`)."),
        "images_revoked_since": facts.optout_matched_now,
        "description": narrative_or_todo(about, "rights_reservation", "", needed=False),
    }


def illegal_content_section(about: About, facts: SummaryFacts) -> dict[str, Any]:
    """3.2: blocklists in force and what they excluded."""
    return {
        "blocklists": [
            {"name": n, "version": v, "source": src, "imported_at": iso(at), "entries": e}
            for n, v, src, at, e in facts.blocklists
        ],
        "images_excluded_blocklisted": excluded_totals(facts).get(BLOCKLISTED, 0),
        "urls_not_fetched_blocklisted": dict(facts.fetch_outcomes).get("skipped-blocklisted", 0),
        "description": narrative_or_todo(about, "illegal_content",
                                  "measures taken to remove illegal content"),
    }


def other_section(about: About, facts: SummaryFacts) -> dict[str, Any]:
    """3.3: the other filters' exclusions, near-duplicates and the license mix."""
    excluded = excluded_totals(facts)
    filters = {r: n for r, n in sorted(excluded.items())
               if not r.startswith(SIGNAL_PREFIXES) and r not in (OPTED_OUT, BLOCKLISTED)}
    return {
        "exclusions_by_reason": filters,
        "near_duplicates_removed": excluded.get(NEAR_DUPLICATE, 0),
        "licenses": [
            {"spdx": spdx or "unknown", "images": n, "share_percent": share(n, facts.images)}
            for spdx, n in sorted(facts.licenses, key=lambda r: (-r[1], r[0] or ""))
        ],
        "description": narrative_or_todo(about, "other_information", "", needed=False),
    }
