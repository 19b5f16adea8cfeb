"""report training-summary, report crawler (added to the shared `report` group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say
from provenance.cli.report_cmd import report_app
from provenance.services import summary as service


@report_app.command("training-summary")
def training_summary(
    ctx: typer.Context,
    export: Annotated[
        list[int], typer.Option("--export", help="Export id of the training set (repeatable).")
    ],
    about: Annotated[
        Path, typer.Option("--about", help="TOML with what only a person knows (examples/).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the summary files.")],
    previous: Annotated[
        int | None,
        typer.Option("--previous", help="Compare with this recorded version (default: last)."),
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The EU AI Act Art. 53(1)(d) public summary of training content, in the Commission
    template's structure (JSON, Markdown, HTML, top-domains.csv)."""
    run = service.training_summary(settings_from(ctx, db=db), export, about, out, previous)
    if json_out:
        emit_json(run.document)
        return
    doc = run.document
    say(f"summary version {doc['version']} of {doc['sections']['1.2']['fields']['model_name']} "
        f"(event {run.event_seq}): {', '.join(run.files)} in {out}")
    if doc["todo"]:
        say(f"TO-DO: {len(doc['todo'])} field(s) need a person's answer: "
            + ", ".join(doc["todo"]))


@report_app.command("crawler")
def crawler(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory of the page and its feed.")],
    about: Annotated[
        Path | None, typer.Option("--about", help="About TOML; its [crawler] table is used.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The crawler information page (HTML) and its Atom feed, one entry per change."""
    result = service.crawler_page(settings_from(ctx), out, about)
    if json_out:
        emit_json(result)
        return
    what = "; ".join(result["changed"]) if result["changed"] else "no change"
    say(f"crawler page in {result['out']} ({result['entries']} feed entries): {what}")
