"""Output conventions: one JSON document on stdout with --json; everything else on stderr,
except tables, which go to stdout when --json is absent."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# Piped or captured output (scripts, CI logs) gets wide tables instead of rich's 80 columns.
_PIPED_WIDTH = 200
err = Console(
    stderr=True,
    highlight=False,
    soft_wrap=True,
    width=None if sys.stderr.isatty() else _PIPED_WIDTH,
)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _PIPED_WIDTH)


def emit_json(document: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """A human message on stderr."""
    err.print(message)


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout (only called when --json is absent). Cells are plain text: user data
    such as `[/x]` in a caption is shown as it is, never read as markup."""
    t = Table(title=Text(title) if title else None, show_lines=False)
    for col in columns:
        t.add_column(Text(col))
    for row in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in row])
    out.print(t)


def progress_bar(label: str, unit: str) -> Progress:
    """The progress bar of long commands: on stderr, on terminals only, gone when done.
    `unit` is a column template, e.g. "items" or "{task.description}"."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not sys.stderr.isatty(),
    )
