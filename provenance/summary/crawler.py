"""The crawler information page and its Atom feed (GPAI Code of Practice, Copyright chapter,
Measure 1.3(3): rightsholders can learn which crawlers are used and be notified of updates).
Pure: the crawler's state is built from settings and the about file; each change of state
becomes one feed entry (RFC 4287). The caller keeps the previous state and entries."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from html import escape
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from provenance.domain import iso
from provenance.summary.behaviour import OTHER_PROTOCOLS, ROBOTS_FEATURES, product_token
from provenance.summary.template import TODO

STATE_FILE = "crawler-state.json"
PAGE_FILE = "crawler.html"
FEED_FILE = "crawler.atom"
_FIELDS = {  # state key -> label on the page and in feed entries
    "name": "Crawler", "user_agent": "User-Agent string", "token": "robots.txt product token",
    "tokens_honoured": "robots.txt tokens evaluated on every URL", "purposes": "Purposes",
    "robots_features": "robots.txt features honoured", "protocols": "Other protocols honoured",
    "contact": "Opt-out and complaints contact", "info_url": "This page",
}


def crawler_state(user_agent: str, tokens: tuple[str, ...],
                  crawler: dict[str, Any]) -> dict[str, Any]:
    """What the page states; missing person-written fields stay visible as TO-DO."""
    token = product_token(user_agent)
    return {
        "name": crawler.get("name") or token,
        "user_agent": user_agent,
        "token": token,
        "tokens_honoured": list(tokens),
        "purposes": list(crawler.get("purposes") or [f"{TODO}: purposes of the crawler"]),
        "robots_features": list(ROBOTS_FEATURES),
        "protocols": list(OTHER_PROTOCOLS),
        "contact": crawler.get("contact") or f"{TODO}: opt-out contact (e-mail or web form)",
        "info_url": crawler.get("info_url"),
    }


def state_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Human-readable differences, one per changed field; the first publication is one line."""
    if before is None:
        return ["Crawler information published."]
    changes: list[str] = []
    for key, name in _FIELDS.items():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list):
            added = [v for v in new if v not in old]
            removed = [v for v in old if v not in new]
            parts = [f"added {', '.join(map(str, added))}" if added else "",
                     f"removed {', '.join(map(str, removed))}" if removed else ""]
            changes.append(f"{name}: " + "; ".join(p for p in parts if p))
        else:
            changes.append(f"{name}: {old or '(none)'} -> {new or '(none)'}")
    return changes


def new_entry(state: dict[str, Any], changes: list[str], now: datetime) -> dict[str, Any]:
    """One feed entry; its id is derived from the new state and the time."""
    digest = hashlib.sha256(
        (json.dumps(state, sort_keys=True) + (iso(now) or "")).encode()).hexdigest()
    title = changes[0] if len(changes) == 1 else f"{len(changes)} changes to the crawler"
    return {"id": f"urn:sha256:{digest}", "updated": iso(now), "title": title,
            "changes": changes}


def _li(values: list[str]) -> str:
    return "".join(f"<li{_todo_class(v)}>{escape(v)}</li>" for v in values)


def _todo_class(value: str) -> str:
    return ' class="todo"' if value.startswith(TODO) else ""


def render_page(state: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """A self-contained HTML page: the crawler's facts and the history of changes."""
    rows = []
    for key, name in _FIELDS.items():
        value = state.get(key)
        if value is None:
            continue
        cell = (f"<ul>{_li([str(v) for v in value])}</ul>" if isinstance(value, list)
                else f"<span{_todo_class(str(value))}>{escape(str(value))}</span>")
        rows.append(f'<tr id="{key}"><th>{escape(name)}</th><td>{cell}</td></tr>')
    history = "".join(
        f"<li><time>{escape(e['updated'])}</time> {escape(e['title'])}<ul>{_li(e['changes'])}"
        "</ul></li>" for e in reversed(entries))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Crawler information: {escape(state['name'])}</title>"
        f'<link rel="alternate" type="application/atom+xml" href="{FEED_FILE}">'
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}th,td{text-align:left;vertical-align:top;padding:.3rem .6rem}"
        ".todo{background:#fff3b0;font-weight:bold}</style></head><body>"
        f"<h1>Crawler information: {escape(state['name'])}</h1>"
        f"<table>{''.join(rows)}</table>"
        f'<h2>Changes</h2><p>Subscribe: <a href="{FEED_FILE}">Atom feed</a></p>'
        f'<ol id="changes">{history}</ol></body></html>\n'
    )


def render_feed(state: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """An Atom feed with one entry per change, newest first."""
    feed_id = state.get("info_url") or f"urn:provenance:crawler:{state['token']}"
    updated = entries[-1]["updated"] if entries else ""
    items = []
    for e in reversed(entries):
        body = "\n".join(e["changes"])
        items.append(
            f"<entry><id>{xml_escape(e['id'])}</id><title>{xml_escape(e['title'])}</title>"
            f"<updated>{xml_escape(e['updated'])}</updated>"
            f'<content type="text">{xml_escape(body)}</content></entry>')
    link = (f'<link rel="alternate" href="{xml_escape(state["info_url"])}"/>'
            if state.get("info_url") else "")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{xml_escape(feed_id)}</id>"
        f"<title>Crawler information: {xml_escape(state['name'])}</title>"
        f"<updated>{xml_escape(updated)}</updated>{link}"
        f"<author><name>{xml_escape(state['name'])}</name></author>"
        + "".join(items) + "</feed>\n"
    )
