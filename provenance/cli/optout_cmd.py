"""optout add / import / list / show / withdraw."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say, table
from provenance.errors import BadInput
from provenance.services import optout as service

optout_app = typer.Typer(
    help="Opt-out requests of rights holders: record, match, list, show, withdraw.",
    no_args_is_help=True,
)
app.add_typer(optout_app, name="optout")

RequesterOpt = Annotated[
    str | None, typer.Option("--requester", help="Who asked (name or organisation).")
]
ContactOpt = Annotated[str | None, typer.Option("--contact", help="How to reach the requester.")]
ReceivedOpt = Annotated[
    str | None,
    typer.Option("--received-at", help="When the request arrived (ISO-8601; default now)."),
]
NotesOpt = Annotated[str | None, typer.Option("--notes", help="Free text kept with the request.")]


def _one_scope(options: dict[str, Any]) -> tuple[str, Any]:
    given = [(k, v) for k, v in options.items() if v is not None]
    if len(given) != 1:
        raise BadInput(
            "give exactly one of --url, --url-prefix, --domain, --sha256, --image, --creator"
        )
    return given[0]


@optout_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="One URL (any scheme spelling).")] = None,
    url_prefix: Annotated[
        str | None, typer.Option("--url-prefix", help="Every URL starting with this.")
    ] = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="A site and all its subdomains.")
    ] = None,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Exact image bytes.")] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="A picture: copies are matched perceptually.")
    ] = None,
    creator: Annotated[
        str | None, typer.Option("--creator", help="Works credited to this name.")
    ] = None,
    max_distance: Annotated[
        int | None,
        typer.Option("--max-distance", help="pHash bits for --image (default measured: 6)."),
    ] = None,
    requester: RequesterOpt = None,
    contact: ContactOpt = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Your ticket id; the same twice is one request."),
    ] = None,
    received_at: ReceivedOpt = None,
    notes: NotesOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record an opt-out request; it applies to the catalog now and to every later ingest."""
    kind, value = _one_scope(
        {
            "url": url,
            "url-prefix": url_prefix,
            "domain": domain,
            "sha256": sha256,
            "image": image,
            "creator": creator,
        }
    )
    if not requester:
        raise BadInput("--requester is required: who asked for the opt-out")
    fields = {
        "scope": kind,
        "value": None if kind == "image" else str(value),
        "requester": requester,
        "contact": contact,
        "reference": reference,
        "received_at": received_at,
        "notes": notes,
    }
    result = service.add_request(
        settings_from(ctx, db=db),
        fields,
        image=value if kind == "image" else None,
        max_distance=max_distance,
    )
    if json_out:
        emit_json({"request_id": result["request_id"], "matched": result["matched"]})
        return
    verb = "recorded" if result["created"] else "already recorded (same reference)"
    say(f"request {result['request_id']} {verb}: matches {result['matched']} image(s)/sighting(s)")


@optout_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV or JSONL with scope,value,... or a plain list.")
    ],
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", help="Scope of a plain list (domain, url, url-prefix), or the default."
        ),
    ] = None,
    requester: RequesterOpt = None,
    contact: ContactOpt = None,
    received_at: ReceivedOpt = None,
    notes: NotesOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import many requests; bad rows are reported by row number, good rows are kept."""
    defaults = {
        "scope": scope,
        "requester": requester,
        "contact": contact,
        "received_at": received_at,
        "notes": notes,
    }
    report = service.import_requests(settings_from(ctx, db=db), file, defaults)
    for error in report.errors:
        say(f"{file}: row {error['row']}: {error['reason']}")
    if json_out:
        emit_json(report.to_json())
        return
    say(
        f"{report.rows} rows: {report.imported} new requests, {report.existing} already recorded, "
        f"{report.rejected} rejected; {report.matched} new matches"
    )


@optout_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="active or withdrawn.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Every request with its scope, status and match counts."""
    requests = service.list_requests(settings_from(ctx, db=db), status)
    if json_out:
        emit_json({"requests": requests})
        return
    table(
        "opt-out requests",
        ["id", "reference", "requester", "scope", "value", "status", "images", "received"],
        [
            [
                r["request_id"],
                r["reference"],
                r["requester"],
                r["scope"]["kind"],
                r["scope"]["value"],
                r["status"],
                r["matched_images"],
                r["received_at"],
            ]
            for r in requests
        ],
    )


@optout_app.command("show")
def show(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(help="Request id (see `optout list`).")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What one request matched and which past exports and shards hold those images."""
    detail = service.show_request(settings_from(ctx, db=db), request_id)
    if json_out:
        emit_json(detail)
        return
    scope = detail["scope"]
    typer.echo(
        f"request {detail['request_id']} ({detail['status']}) by {detail['requester']}: "
        f"{scope['kind']} {scope['value']}"
    )
    typer.echo(
        f"received {detail['received_at']}, recorded {detail['recorded_at']}, "
        f"reference {detail['reference']}"
    )
    typer.echo(
        f"matched {detail['matched']['images']} image(s), "
        f"{detail['matched']['sightings']} sighting(s)"
    )
    table(
        "matched images",
        ["sha256", "how", "distance", "sightings"],
        [[i["sha256"], i["how"], i["distance"], i["sightings"]] for i in detail["images"]],
    )
    table(
        "affected exports",
        ["export", "name", "created", "before request", "shard", "samples", "path"],
        [
            [
                e["export_id"],
                e["name"],
                e["created_at"],
                e["made_before_request"],
                s["shard_index"],
                s["samples"],
                s["path"],
            ]
            for e in detail["exports"]
            for s in e["shards"]
        ],
    )


@optout_app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(help="Request id (see `optout list`).")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw a request: later exports may include its images again; history is kept."""
    detail = service.withdraw_request(settings_from(ctx, db=db), request_id)
    if json_out:
        emit_json(detail)
        return
    if detail["changed"]:
        say(f"request {request_id} withdrawn at {detail['withdrawn_at']}")
    else:
        say(f"request {request_id} was already withdrawn (at {detail['withdrawn_at']})")
