"""Use cases: the EU AI Act training-content summary of a set of exports, and the crawler
information page. Reads the catalog with aggregate SQL, records each summary generation in the
hash-chained event log, writes the documents."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from provenance.config import Settings
from provenance.db import summary_queries as q
from provenance.db.engine import transaction
from provenance.domain import utcnow
from provenance.errors import BadInput, EnvironmentProblem
from provenance.eventlog import append_event
from provenance.services.catalog import open_catalog
from provenance.services.fetch import fetch_tokens
from provenance.summary.about import About, load_about
from provenance.summary.compute import build_summary, record
from provenance.summary.crawler import (
    FEED_FILE,
    PAGE_FILE,
    STATE_FILE,
    crawler_state,
    new_entry,
    render_feed,
    render_page,
    state_changes,
)
from provenance.summary.render import to_html, to_markdown, top_domains_csv
from provenance.summary.template import default_rule, override_rule

SUMMARY_FILES = ("training-summary.json", "training-summary.md", "training-summary.html",
                 "top-domains.csv")


def _write(path: Path, text: str) -> str:
    """Write via a temporary file and rename (no half-written document); returns its sha256."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {path}: {exc.strerror or exc}") from exc
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _out_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {path}: {exc.strerror or exc}") from exc
    return path


def _exports(conn: Any, ids: Sequence[int]) -> tuple[q.ExportRow, ...]:
    if not ids:
        raise BadInput("name at least one export: --export ID")
    exports = q.load_exports(conn, sorted(set(ids)))
    missing = sorted(set(ids) - {e.id for e in exports})
    if missing:
        raise BadInput(f"no export with id {', '.join(map(str, missing))} "
                       "(see `provenance exports list`)")
    unfinished = [e.id for e in exports if e.status != "complete"]
    if unfinished:
        raise BadInput(f"export {', '.join(map(str, unfinished))} is not complete; finish it "
                       "(re-run the export) before summarising it")
    return exports


def _previous(events: list[dict[str, Any]], model: str,
              wanted: int | None) -> tuple[int, dict[str, Any] | None]:
    """(the new version number, the generation to compare with) for this model name."""
    mine = [e for e in events if e.get("model", {}).get("name") == model]
    version = 1 + max((int(e["version"]) for e in mine), default=0)
    if wanted is None:
        return version, (mine[-1] if mine else None)
    chosen = [e for e in mine if int(e["version"]) == wanted]
    if not chosen:
        known = ", ".join(str(e["version"]) for e in mine) or "none"
        raise BadInput(f"--previous {wanted}: no recorded summary version {wanted} of {model!r} "
                       f"(recorded: {known})")
    return version, chosen[-1]


@dataclass(frozen=True)
class SummaryRun:
    document: dict[str, Any]
    files: dict[str, str]  # file name -> sha256
    event_seq: int


def training_summary(settings: Settings, export_ids: Sequence[int], about_path: Path,
                     out_dir: Path, previous: int | None = None,
                     now: datetime | None = None) -> SummaryRun:
    """Compute the summary of exactly these exports, record the generation, write the files."""
    about: About = load_about(about_path)
    rule = override_rule(default_rule(), about.top_domains, str(about_path))
    crawl_sources = sorted(n for n, c in about.sources.items() if c == "own-crawl")
    at = now or utcnow()
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            facts = q.load_facts(conn, _exports(conn, export_ids), crawl_sources)
        with transaction(engine) as conn:
            version, before = _previous(q.summary_events(conn), about.model["name"], previous)
            doc = build_summary(about, facts, rule, version, at, before)
            texts = {
                "training-summary.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                "training-summary.md": to_markdown(doc),
                "training-summary.html": to_html(doc),
                "top-domains.csv": top_domains_csv(doc),
            }
            files = {name: hashlib.sha256(t.encode()).hexdigest() for name, t in texts.items()}
            event = append_event(conn, q.SUMMARY_EVENT, {**record(doc), "files": files}, at)
    finally:
        engine.dispose()
    target = _out_dir(out_dir)
    for name, text in texts.items():
        _write(target / name, text)
    return SummaryRun(doc, files, event.seq)


def crawler_page(settings: Settings, out_dir: Path, about_path: Path | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """Write the crawler page and feed; a changed state adds one feed entry. The previous
    state and entries are kept in DIR/crawler-state.json."""
    crawler = load_about_crawler(about_path) if about_path is not None else {}
    _, tokens = fetch_tokens(settings.user_agent)
    state = crawler_state(settings.user_agent, tokens, crawler)
    target = _out_dir(out_dir)
    saved = _read_state(target / STATE_FILE)
    entries: list[dict[str, Any]] = list(saved.get("entries", []))
    changes = state_changes(saved.get("state"), state)
    if changes:
        entries.append(new_entry(state, changes, now or utcnow()))
    _write(target / PAGE_FILE, render_page(state, entries))
    _write(target / FEED_FILE, render_feed(state, entries))
    _write(target / STATE_FILE, json.dumps({"state": state, "entries": entries}, indent=2) + "\n")
    return {"out": str(target), "state": state, "changed": changes, "entries": len(entries),
            "files": [PAGE_FILE, FEED_FILE, STATE_FILE]}


def load_about_crawler(path: Path) -> dict[str, Any]:
    """The [crawler] table of an about file (the whole file is validated)."""
    return dict(load_about(path).crawler)


def _read_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path} is unreadable ({exc}); move it away to start a new history") \
            from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path} is not a crawler state file; move it away to start anew")
    return data
