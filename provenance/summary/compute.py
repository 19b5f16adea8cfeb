"""The whole summary document in the template's structure, what changed since a previous
generation, and the record of a generation kept in the event log. Pure: facts, the about file,
the rule, the version and `now` in; JSON-ready data out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from provenance.db.summary_queries import SummaryFacts
from provenance.domain import iso
from provenance.errors import BadInput
from provenance.summary.about import About
from provenance.summary.processing import (
    crawl_section,
    illegal_content_section,
    other_section,
    rights_section,
)
from provenance.summary.sources import (
    UNNAMED,
    classify,
    data_section,
    model_section,
    other_class_section,
    provider_section,
    public_section,
    third_party_section,
)
from provenance.summary.template import (
    SECTIONS,
    TEMPLATE_NAME,
    TEMPLATE_SOURCE,
    TODO,
    TopDomainRule,
)


def unclassified_sources(about: About, facts: SummaryFacts) -> list[str]:
    """Source names of included images that the about file does not classify."""
    names = {name if name is not None else UNNAMED for name, *_ in facts.sources}
    return sorted(names - set(about.sources))


def build_summary(about: About, facts: SummaryFacts, rule: TopDomainRule, version: int,
                  now: datetime, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The summary document. Raises BadInput when a source name is not classified."""
    missing = unclassified_sources(about, facts)
    if missing:
        raise BadInput(f"{about.path}: classify these source names under [sources]: "
                       f"{', '.join(repr(m) for m in missing)}")
    classes = classify(about, facts)
    fields: dict[str, dict[str, Any]] = {
        "1.1": provider_section(about),
        "1.2": model_section(about),
        "1.3": data_section(about, facts),
        "2.1": public_section(about, facts, classes),
        "2.2": third_party_section(about, classes),
        "2.3": crawl_section(about, facts, rule, classes),
        "2.4": other_class_section(about, classes, "user-data", "user_data",
                                   "services or products user data was collected from"),
        "2.5": other_class_section(about, classes, "synthetic", "synthetic",
                                   "models used to generate the synthetic data"),
        "2.6": other_class_section(about, classes, "other", "other_sources",
                                   "description of the other sources"),
        "3.1": rights_section(about, facts),
        "3.2": illegal_content_section(about, facts),
        "3.3": other_section(about, facts),
    }
    doc: dict[str, Any] = {
        "template": {"name": TEMPLATE_NAME, "source": TEMPLATE_SOURCE},
        "version": version,
        "last_update": now.date().isoformat(),
        "generated_at": iso(now),
        "inputs": {
            "exports": [{"id": e.id, "name": e.name, "policy": e.policy_name,
                         "policy_sha256": e.policy_sha256, "created_at": iso(e.created_at),
                         "included": e.included} for e in facts.exports],
            "about": {"path": about.path, "sha256": about.sha256},
        },
        "sections": {num: {"title": title, "fields": fields[num]} for num, title in SECTIONS},
    }
    doc["todo"] = [f"{num} {path}" for num, path in _todos(doc["sections"])]
    doc["what_changed"] = what_changed(previous, record(doc)) if previous else None
    return doc


def _todos(sections: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(num: str, path: str, value: Any) -> None:
        if isinstance(value, str) and value.startswith(TODO):
            found.append((num, path))
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(num, f"{path}.{key}" if path else key, inner)

    for num, section in sections.items():
        walk(num, "", section["fields"])
    return found


def record(doc: dict[str, Any]) -> dict[str, Any]:
    """What the event log keeps of a generation: its inputs and the figures a later
    generation compares against."""
    sections = doc["sections"]
    top = sections["2.3"]["fields"]["top_domains"]
    sources: dict[str, int] = {}
    for num in ("2.1", "2.4", "2.5", "2.6"):
        for row in sections[num]["fields"]["sources"]:
            sources[row["source_name"]] = row["images"]
    for block in sections["2.2"]["fields"].values():
        for row in block["sources"]:
            sources[row["source_name"]] = row["images"]
    for row in sections["2.3"]["fields"]["own_crawl_sources"]:
        sources[row["source_name"]] = row["images"]
    return {
        "version": doc["version"],
        "generated_at": doc["generated_at"],
        "model": {"name": sections["1.2"]["fields"]["model_name"],
                  "version": sections["1.2"]["fields"]["model_version"]},
        "exports": [e["id"] for e in doc["inputs"]["exports"]],
        "about_sha256": doc["inputs"]["about"]["sha256"],
        "rule": top["parameters"],
        "images": sections["1.3"]["fields"]["image_count"],
        "total_bytes": sections["1.3"]["fields"]["total_bytes"],
        "sources": dict(sorted(sources.items())),
        "domains_total": top["domains_total"],
        "top_domains": [d["domain"] for d in top["domains"]],
    }


def _change(before: int, after: int) -> dict[str, int]:
    return {"before": before, "after": after, "change": after - before}


def what_changed(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """New and dropped top domains and the count changes since a previous generation."""
    before_top, after_top = previous.get("top_domains", []), current["top_domains"]
    before_src, after_src = previous.get("sources", {}), current["sources"]
    return {
        "previous_version": previous.get("version"),
        "previous_generated_at": previous.get("generated_at"),
        "exports_before": previous.get("exports", []),
        "images": _change(int(previous.get("images", 0)), current["images"]),
        "total_bytes": _change(int(previous.get("total_bytes", 0)), current["total_bytes"]),
        "domains_total": _change(int(previous.get("domains_total", 0)), current["domains_total"]),
        "new_top_domains": [d for d in after_top if d not in set(before_top)],
        "dropped_top_domains": [d for d in before_top if d not in set(after_top)],
        "sources": [
            {"source_name": name, **_change(int(before_src.get(name, 0)), after_src.get(name, 0))}
            for name in sorted(set(before_src) | set(after_src))
            if before_src.get(name, 0) != after_src.get(name, 0)
        ],
    }
