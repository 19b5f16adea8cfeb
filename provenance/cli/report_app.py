"""The `report` command group, shared by the modules that add report commands to it
(compliance queries, the training-content summary, the crawler page)."""

from __future__ import annotations

import typer

from provenance.cli import app

report_app = typer.Typer(help="Compliance reports and published documents.", no_args_is_help=True)
app.add_typer(report_app, name="report")
