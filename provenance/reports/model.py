"""A report is plain data: named sections of rows under fixed columns, plus facts about how
it was made (as-of time, export, policy). Formatters never compute; builders never format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Section:
    """One table of a report: `rows` line up with `columns`, already in output order."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def records(self) -> list[dict[str, Cell]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class Report:
    """A named report: `meta` says what it covers (as_of, export_id, generated_at...)."""

    name: str
    title: str
    sections: tuple[Section, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> Section:
        """The section called `name` (KeyError if absent)."""
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)
