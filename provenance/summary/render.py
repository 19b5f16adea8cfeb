"""Renderings of the summary document: Markdown, a self-contained HTML page (inline style, no
external resources) in the template's order, and the top-domain CSV. Pure: document in, text
out. Values that start with TO-DO stay visible as such in every rendering."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from provenance.summary.template import PARTS, TODO

LABELS = {
    "provider_name": "Provider name", "provider_contact": "Provider contact details",
    "representative_name": "Authorised representative",
    "representative_contact": "Authorised representative contact details",
    "model_name": "Versioned model name", "model_version": "Model version",
    "dependencies": "Model dependencies", "placed_on_market": "Date placed on the Union market",
    "image_count": "Number of images", "image_size_band": "Training data size (images)",
    "latest_acquisition": "Latest date of data acquisition (MM/YYYY)",
    "training_continues": "Data collection continues to further train the model",
    "used": "Used", "share_percent": "Share (%)", "top_domains": "Most relevant domain names",
    "urls_not_fetched": "URLs never requested, by reason",
    "code_of_practice_signatory": "Signatory of the GPAI Code of Practice",
}
_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.45}table{border-collapse:collapse;margin:.4rem 0}"
        "td,th{border:1px solid #bbb;padding:.2rem .5rem;text-align:left;vertical-align:top}"
        "th{background:#eee}.todo{background:#fff3b0;font-weight:bold}"
        "dt{font-weight:600;margin-top:.5rem}dd{margin-left:1.2rem}")


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _is_nested(value: Any) -> bool:
    return isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values())


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_scalar(v)}" for k, v in value.items()) if value else "none"
    return str(value)


# ----------------------------------------------------------------------------- Markdown


def _md_cell(value: Any) -> str:
    return _scalar(value).replace("|", "\\|").replace("\n", " ")


def _md_value(key: str, value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if _is_table(value):
        cols = _columns(value)
        lines = [f"{pad}- **{label(key)}**:", "", "| " + " | ".join(label(c) for c in cols) + " |",
                 "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_md_cell(r.get(c)) for c in cols) + " |" for r in value]
        return [*lines, ""]
    if _is_nested(value):
        lines = [f"{pad}- **{label(key)}**:"]
        for inner_key, inner in value.items():
            lines += _md_value(inner_key, inner, depth + 1)
        return lines
    text = _scalar(value)
    if text.startswith(TODO):
        text = f"**{text}**"
    return [f"{pad}- **{label(key)}**: {text}"]


def to_markdown(doc: dict[str, Any]) -> str:
    """The summary as Markdown, in the template's order."""
    model = doc["sections"]["1.2"]["fields"]["model_name"]
    lines = [f"# Public summary of training content: {model}",
             "", f"{doc['template']['name']} — {doc['template']['source']}", "",
             f"- **Version of the summary**: {doc['version']}",
             f"- **Last update**: {doc['last_update']}", ""]
    if doc["todo"]:
        lines += [f"**{TODO}: {len(doc['todo'])} field(s) still need a person's answer:** "
                  + ", ".join(doc["todo"]), ""]
    part = ""
    for num, section in doc["sections"].items():
        if num[0] != part:
            part = num[0]
            lines += [f"## {part}. {PARTS[part]}", ""]
        lines += [f"### {num} {section['title']}", ""]
        for key, value in section["fields"].items():
            lines += _md_value(key, value, 0)
        lines.append("")
    if doc.get("what_changed"):
        lines += ["## What changed", ""]
        for key, value in doc["what_changed"].items():
            lines += _md_value(key, value, 0)
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------- HTML


def _html_scalar(value: Any) -> str:
    text = escape(_scalar(value))
    return f'<span class="todo">{text}</span>' if text.startswith(TODO) else text


def _html_value(value: Any) -> str:
    if _is_table(value):
        cols = _columns(value)
        head = "".join(f"<th>{escape(label(c))}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{_html_scalar(r.get(c))}</td>" for c in cols) + "</tr>"
            for r in value
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if _is_nested(value):
        return _html_fields(value)
    return _html_scalar(value)


def _html_fields(fields: dict[str, Any]) -> str:
    items = "".join(f"<dt>{escape(label(k))}</dt><dd>{_html_value(v)}</dd>"
                    for k, v in fields.items())
    return f"<dl>{items}</dl>"


def to_html(doc: dict[str, Any]) -> str:
    """A self-contained HTML page of the summary, in the template's order."""
    model = escape(str(doc["sections"]["1.2"]["fields"]["model_name"]))
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f"<title>Public summary of training content: {model}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>Public summary of training content: {model}</h1>",
           f"<p>{escape(doc['template']['name'])} — {escape(doc['template']['source'])}</p>",
           f'<p id="version">Version of the summary: {doc["version"]} · Last update: '
           f'{escape(doc["last_update"])}</p>']
    if doc["todo"]:
        out.append(f'<p class="todo" id="todo">{TODO}: {len(doc["todo"])} field(s) still need '
                   f'a person\'s answer: {escape(", ".join(doc["todo"]))}</p>')
    part = ""
    for num, section in doc["sections"].items():
        if num[0] != part:
            part = num[0]
            out.append(f"<h2>{part}. {escape(PARTS[part])}</h2>")
        out.append(f'<section id="s{num}"><h3>{num} {escape(section["title"])}</h3>'
                   f"{_html_fields(section['fields'])}</section>")
    if doc.get("what_changed"):
        out.append(f'<section id="changes"><h2>What changed</h2>'
                   f"{_html_fields(doc['what_changed'])}</section>")
    out.append("</body></html>\n")
    return "\n".join(out)


# ----------------------------------------------------------------------------- CSV


def top_domains_csv(doc: dict[str, Any]) -> str:
    """rank, domain, images, bytes, share of crawled bytes: the 2.3 list."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", "domain", "images", "bytes", "share_of_crawled_bytes_percent"])
    for row in doc["sections"]["2.3"]["fields"]["top_domains"]["domains"]:
        writer.writerow([row["rank"], row["domain"], row["images"], row["bytes"],
                         row["share_of_crawled_bytes_percent"]])
    return buf.getvalue()
