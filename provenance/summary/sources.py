"""Sections 1.1-2.6 of the summary: who, which model, how much data, and from where. Pure:
the about file and the aggregated catalog facts in, plain JSON-ready dicts out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from provenance.db.summary_queries import SummaryFacts
from provenance.summary.about import About
from provenance.summary.template import TODO, TopDomainRule, image_size_band

UNNAMED = "(no source name)"


def todo(what: str) -> str:
    """A field only a person can write, left visibly open."""
    return f"{TODO}: {what}"


def month(ts: datetime | None) -> str | None:
    """MM/YYYY, the template's date format."""
    return ts.strftime("%m/%Y") if ts is not None else None


def period(lo: datetime | None, hi: datetime | None) -> str | None:
    """MM/YYYY-MM/YYYY."""
    return f"{month(lo)}-{month(hi)}" if lo is not None and hi is not None else None


def share(part: int, whole: int) -> float:
    """A percentage with two decimals (0 when there is nothing)."""
    return round(100.0 * part / whole, 2) if whole else 0.0


def yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def narrative_or_todo(about: About, key: str, what: str, needed: bool = True) -> str | None:
    text = about.narrative.get(key)
    if text:
        return text
    return todo(what) if needed else None


def provider_section(about: About) -> dict[str, Any]:
    """1.1."""
    rep = about.representative
    missing_rep = todo("authorised representative's name and contact, or 'Not applicable' "
                       "(provider established in the Union)")
    return {
        "provider_name": about.provider["name"],
        "provider_contact": about.provider["contact"],
        "representative_name": rep["name"] if rep else missing_rep,
        "representative_contact": rep["contact"] if rep else missing_rep,
    }


def model_section(about: About) -> dict[str, Any]:
    """1.2."""
    placed = about.model.get("placed_on_market")
    if isinstance(placed, date):
        placed = placed.isoformat()
    deps = about.model.get("dependencies")
    return {
        "model_name": about.model["name"],
        "model_version": about.model["version"],
        "dependencies": (deps or "None") if deps is not None else todo(
            "models this one modifies or fine-tunes, with links to their summaries, or None"),
        "placed_on_market": placed or todo("date the model is placed on the Union market"),
    }


def data_section(about: About, facts: SummaryFacts) -> dict[str, Any]:
    """1.3: modality Image, the exact count and its band, bytes, captions, latest acquisition."""
    return {
        "modalities": ["Image", "Text"] if facts.with_caption else ["Image"],
        "image_count": facts.images,
        "image_size_band": image_size_band(facts.images),
        "total_bytes": facts.total_bytes,
        "images_with_caption": facts.with_caption,
        "captions": (f"Text captions accompany {facts.with_caption:,} of the images"
                     if facts.with_caption else "No text captions"),
        "content_types": narrative_or_todo(about, "content_types",
                                    "types of image content (e.g. photographs, illustrations)"),
        "latest_acquisition": month(facts.latest_acquired),
        "training_continues": yes_no(bool(about.model["training_continues"])),
        "other_characteristics": about.narrative.get("other_characteristics"),
    }


def classify(about: About, facts: SummaryFacts) -> dict[str, list[dict[str, Any]]]:
    """Per class: rows of (source name, images, share of all images), by source name."""
    by_class: dict[str, list[dict[str, Any]]] = {}
    for name, images, first, last in facts.sources:
        key = name if name is not None else UNNAMED
        by_class.setdefault(about.sources[key], []).append({
            "source_name": key, "images": images, "share_percent": share(images, facts.images),
            "period": period(first, last),
        })
    return by_class


def _class_block(rows: list[dict[str, Any]], about: About, narrative: str,
                 what: str) -> dict[str, Any]:
    used = bool(rows)
    return {
        "used": yes_no(used),
        "modality": "Image" if used else None,
        "sources": rows,
        "images": sum(r["images"] for r in rows),
        "description": narrative_or_todo(about, narrative, what, needed=used),
    }


def public_section(about: About, facts: SummaryFacts,
                   classes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """2.1: public datasets with their links and versions from the about file."""
    rows = classes.get("public-dataset", [])
    counts = {r["source_name"]: r["images"] for r in rows}
    block = _class_block(rows, about, "public_datasets",
                         "general description of other publicly available datasets")
    block["datasets"] = [
        {"name": ds.name, "version": ds.version, "url": ds.url, "source_name": ds.source_name,
         "images": counts.get(ds.source_name, 0),
         "share_percent": share(counts.get(ds.source_name, 0), facts.images),
         "description": ds.description}
        for ds in about.public_datasets
    ]
    return block


def third_party_section(about: About, classes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """2.2: 2.2.1 commercially licensed, 2.2.2 other private third-party datasets."""
    return {
        "licensed": _class_block(classes.get("licensed", []), about, "licensed",
                                 "description of the datasets licensed from rightsholders"),
        "private_third_party": _class_block(
            classes.get("private-third-party", []), about, "private_third_party",
            "description of private datasets obtained from other third parties"),
    }


def other_class_section(about: About, classes: dict[str, list[dict[str, Any]]], klass: str,
                        narrative: str, what: str) -> dict[str, Any]:
    """2.4 user data, 2.5 synthetic data, 2.6 other sources."""
    return _class_block(classes.get(klass, []), about, narrative, what)


def top_domains(facts: SummaryFacts, rule: TopDomainRule, sme: bool) -> dict[str, Any]:
    """2.3's list: the top N registrable domains of crawled images by bytes."""
    total = len(facts.domains)
    n = rule.count(total, sme)
    crawled_bytes = sum(b for _, _, b in facts.domains)
    return {
        "rule": rule.describe(sme),
        "parameters": rule.to_json(),
        "sme": sme,
        "domains_total": total,
        "listed": n,
        "domains": [
            {"rank": i + 1, "domain": d, "images": images, "bytes": size,
             "share_of_crawled_bytes_percent": share(size, crawled_bytes)}
            for i, (d, images, size) in enumerate(facts.domains[:n])
        ],
    }
