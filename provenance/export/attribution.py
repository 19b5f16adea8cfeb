"""Credit lines for images whose license requires attribution: the per-sample attribution text,
and the export's `ATTRIBUTION.md` / `ATTRIBUTION.csv`.

The text follows the TASL practice Creative Commons recommends (Title, Author, Source,
License). Unknown or missing licenses fail closed: they are listed, since we cannot show that
no credit is owed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from provenance.licenses import license_facts, requires_attribution

CSV_COLUMNS = ("key", "creator", "title", "source_url", "license", "license_url")


@dataclass(frozen=True)
class Credit:
    """What an attribution line needs about one sample."""

    key: str
    creator: str | None
    title: str | None
    source_url: str | None
    license_spdx: str | None
    license_raw: str | None

    @property
    def license_label(self) -> str:
        return self.license_spdx or self.license_raw or "unknown license"

    @property
    def license_url(self) -> str | None:
        return license_url(self.license_spdx)

    @property
    def required(self) -> bool:
        return requires_attribution(self.license_spdx)


def license_url(spdx_id: str | None) -> str | None:
    """The canonical deed or text URL of a single SPDX license id; None for expressions."""
    if not spdx_id or " " in spdx_id.strip():
        return None
    info = license_facts(spdx_id)
    family, version = info.family, info.version
    if family == "cc0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    if family == "pdm":
        return "https://creativecommons.org/publicdomain/mark/1.0/"
    if family and family.startswith("cc-") and version and spdx_id.upper().startswith("CC-"):
        # CC-BY-SA-3.0-DE -> licenses/by-sa/3.0/de/
        port = spdx_id.split(version, 1)[1].strip("-").lower()
        tail = f"{port}/" if port else ""
        return f"https://creativecommons.org/licenses/{family[3:]}/{version}/{tail}"
    return f"https://spdx.org/licenses/{spdx_id}.html"


def attribution_text(credit: Credit) -> str:
    """One credit line, e.g. '"Dune" by Jo Doe (https://...), licensed under CC-BY-4.0
    (https://creativecommons.org/licenses/by/4.0/)'."""
    title = f'"{credit.title}"' if credit.title else "Untitled image"
    creator = credit.creator or "an unknown creator"
    source = f" ({credit.source_url})" if credit.source_url else ""
    lic_url = credit.license_url
    lic = credit.license_label + (f" ({lic_url})" if lic_url else "")
    return f"{title} by {creator}{source}, licensed under {lic}"


def _md_cell(value: str | None) -> str:
    return (value or "").replace("|", "\\|").replace("\n", " ")


def attribution_markdown(export_name: str, credits: Iterable[Credit]) -> str:
    """ATTRIBUTION.md: a table of every sample that needs credit, in key order."""
    lines = [
        f"# Attribution for {export_name}",
        "",
        "Images in this dataset whose license requires credit (or whose license is unknown).",
        "",
        "| key | creator | title | source | license | license URL |",
        "|---|---|---|---|---|---|",
    ]
    for c in credits:
        lines.append(
            f"| {c.key} | {_md_cell(c.creator)} | {_md_cell(c.title)} | "
            f"{_md_cell(c.source_url)} | {_md_cell(c.license_label)} | {_md_cell(c.license_url)} |"
        )
    return "\n".join(lines) + "\n"


def attribution_csv(credits: Iterable[Credit]) -> str:
    """ATTRIBUTION.csv with the columns in CSV_COLUMNS."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in credits:
        writer.writerow([c.key, c.creator or "", c.title or "", c.source_url or "",
                         c.license_label, c.license_url or ""])
    return buf.getvalue()
