"""The `provenance` command line: typer apps only; parse, call a service, format, exit code."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from provenance.cli.common import AllowPrivateOpt, DbOpt, StoreOpt
from provenance.cli.output import err
from provenance.errors import ProvenanceError


class ProvenanceGroup(TyperGroup):
    """Turns the project's exceptions into `error: ...` and the exit code CLI.md names."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ProvenanceError as exc:
            err.print(f"error: {exc}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; finished work is kept, re-run to continue", markup=False)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=ProvenanceGroup,
    name="provenance",
    help="The provenance and license record of images for AI training, and the export gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: DbOpt = None,
    store: StoreOpt = None,
    allow_private: AllowPrivateOpt = False,
) -> None:
    """provenance: where every training image came from, under which license, and whether
    its rights holder opted out."""
    ctx.obj = {"db": db, "store": store, "allow_private": allow_private}


def _register() -> None:
    # Each module adds its commands to `app` when imported; this order is the order in --help.
    from provenance.cli import (  # noqa: F401
        catalog_cmds,
        demo_cmd,
        ingest_cmd,
        fetch_cmd,
        signals_cmd,
        inspect_cmd,
        show_cmd,
        license_cmd,
        policy_cmd,
        export_cmd,
        optout_cmd,
        audit_cmd,
        report_cmd,
        summary_cmd,
        blocklist_cmd,
        log_cmd,
        scale_cmd,
    )


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # pragma: no cover - e.g. `provenance report ... | head`
        sys.exit(0)
