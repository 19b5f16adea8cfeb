"""provenance report licenses|domains|signals|optouts|exports|composition."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, settings_from
from provenance.cli.output import emit_json, say, table
from provenance.domain import parse_time
from provenance.errors import BadInput
from provenance.reports import Report
from provenance.reports.formats import FORMATS, to_csv, to_json
from provenance.reports.html import composition_html
from provenance.services.reports import build_report

report_app = typer.Typer(help="Compliance reports (plain tables, JSON or CSV).",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")

FormatOpt = Annotated[str, typer.Option("--format", help="table, json or csv.")]
ExportOpt = Annotated[int | None, typer.Option(
    "--export", help="Only the images of this export.", show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="What was known at this UTC time (ISO-8601).", show_default=False)]


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise BadInput(f"--as-of must be an ISO-8601 time, e.g. 2026-11-01T00:00:00Z "
                       f"(got {text!r})") from None


def _emit(report: Report, fmt: str) -> None:
    if fmt == "json":
        emit_json(to_json(report))
    elif fmt == "csv":
        sys.stdout.write(to_csv(report))
    else:
        for section in report.sections:
            table(f"{report.title}: {section.title}", section.columns, section.rows)


def _run(ctx: typer.Context, name: str, fmt: str, export_id: int | None, as_of: str | None,
         db: str | None) -> Report:
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    when = _as_of(as_of)
    report = build_report(settings_from(ctx, db=db), name, export_id, when)
    _emit(report, fmt)
    return report


@report_app.command("licenses")
def report_licenses(ctx: typer.Context, fmt: FormatOpt = "table", export: ExportOpt = None,
                    as_of: AsOfOpt = None, db: DbOpt = None) -> None:
    """By SPDX id and family, with the raw texts behind each and the unrecognized ones."""
    _run(ctx, "licenses", fmt, export, as_of, db)


@report_app.command("domains")
def report_domains(ctx: typer.Context, fmt: FormatOpt = "table", export: ExportOpt = None,
                   as_of: AsOfOpt = None, db: DbOpt = None) -> None:
    """Images and sightings per registrable domain, top first."""
    _run(ctx, "domains", fmt, export, as_of, db)


@report_app.command("signals")
def report_signals(ctx: typer.Context, fmt: FormatOpt = "table", as_of: AsOfOpt = None,
                   db: DbOpt = None) -> None:
    """Counts by kind and status (latest per subject), and hosts whose status changed."""
    _run(ctx, "signals", fmt, None, as_of, db)


@report_app.command("optouts")
def report_optouts(ctx: typer.Context, fmt: FormatOpt = "table", as_of: AsOfOpt = None,
                   db: DbOpt = None) -> None:
    """The complaints register: requests, what they matched, status, and pending effect."""
    _run(ctx, "optouts", fmt, None, as_of, db)


@report_app.command("exports")
def report_exports(ctx: typer.Context, fmt: FormatOpt = "table", export: ExportOpt = None,
                   db: DbOpt = None) -> None:
    """Each export with its policy, counts and how many samples have since been revoked."""
    _run(ctx, "exports", fmt, export, None, db)


@report_app.command("composition")
def report_composition(
    ctx: typer.Context,
    fmt: FormatOpt = "table",
    export: ExportOpt = None,
    as_of: AsOfOpt = None,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Also write a self-contained HTML page with charts.",
        show_default=False)] = None,
    db: DbOpt = None,
) -> None:
    """Make-up of the catalog or one export: sources, domains, licenses, formats, sizes,
    captions, tags."""
    report = _run(ctx, "composition", fmt, export, as_of, db)
    if html is not None:
        try:
            html.write_text(composition_html(report), encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"cannot write {html}: {exc}") from exc
        say(f"wrote {html}")
