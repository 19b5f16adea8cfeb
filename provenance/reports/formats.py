"""Formatters: a Report as a JSON document or CSV text. (Tables are drawn by the CLI from
the same `Section` rows.)"""

from __future__ import annotations

import csv
import io
from typing import Any

from provenance.reports.model import Report

FORMATS = ("table", "json", "csv")


def to_json(report: Report) -> dict[str, Any]:
    """`{"report": name, <meta...>, "<section>": [{column: value}, ...], ...}`."""
    doc: dict[str, Any] = {"report": report.name, **dict(report.meta)}
    for section in report.sections:
        doc[section.name] = section.records()
    return doc


def to_csv(report: Report) -> str:
    """One CSV table; with several sections, a leading `section` column says which."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if len(report.sections) == 1:
        section = report.sections[0]
        writer.writerow(section.columns)
        writer.writerows(["" if v is None else v for v in row] for row in section.rows)
        return buffer.getvalue()
    width = max(len(s.columns) for s in report.sections)
    writer.writerow(["section", *[f"c{i + 1}" for i in range(width)]])
    for section in report.sections:
        pad = [""] * (width - len(section.columns))
        writer.writerow([f"{section.name}:header", *section.columns, *pad])
        for row in section.rows:
            cells = ["" if v is None else v for v in row]
            writer.writerow([section.name, *cells, *[""] * (width - len(cells))])
    return buffer.getvalue()
