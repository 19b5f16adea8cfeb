"""provenance show."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, out, table
from provenance.services.show import show_image


@app.command()
def show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="sha256 of the image, or a unique prefix (6+ hex).")],
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Everything known about one image: sightings, licenses, signals with evidence, opt-outs,
    exports."""
    doc = show_image(settings_from(ctx, db=db), key)
    if json_out:
        emit_json(doc)
        return
    _print(doc)


def _print(doc: dict[str, Any]) -> None:
    out.print(f"[bold]{doc['sha256']}[/bold]")
    out.print(
        f"{doc['format']} {doc['width']}x{doc['height']}, {doc['byte_size']} bytes, "
        f"phash {doc['phash']} ({doc['phash_alg']}), first seen {doc['first_seen_at']}"
        + ("" if doc["decode_ok"] else f", DECODE FAILED: {doc['decode_error']}")
    )
    table(
        "sightings",
        ["source", "url / origin", "license", "spdx", "creator", "caption", "status"],
        [
            [
                s["source_name"],
                s["url"] or s["origin"],
                s["license_raw"],
                s["license_spdx"],
                s["creator"],
                (s["caption"] or "")[:60],
                s["status"],
            ]
            for s in doc["sightings"]
        ],
    )
    table(
        "signals",
        ["observed", "kind", "status", "scope", "subject", "detail"],
        [
            [s["observed_at"], s["kind"], s["status"], s["scope"], s["subject"], s["detail"]]
            for s in doc["signals"]
        ],
    )
    if doc["optouts"]:
        table(
            "opt-out requests",
            ["request", "requester", "scope", "value", "status", "how"],
            [
                [o["request_id"], o["requester"], o["scope"], o["value"], o["status"], o["how"]]
                for o in doc["optouts"]
            ],
        )
    if doc["exports"]:
        table(
            "exports",
            ["export", "name", "shard", "policy", "created"],
            [
                [e["export_id"], e["name"], e["shard_index"], e["policy"], e["created_at"]]
                for e in doc["exports"]
            ],
        )
