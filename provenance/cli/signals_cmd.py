"""check-url, signals refresh, signals history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli import app
from provenance.cli.common import AllowPrivateOpt, DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say, table
from provenance.domain import SignalKind
from provenance.errors import BadInput
from provenance.services.signals import check_url, signal_history
from provenance.services.signals_refresh import refresh

signals_app = typer.Typer(
    help="Host- and URL-level opt-out signals kept in the catalog, with their history.",
    no_args_is_help=True,
)
app.add_typer(signals_app, name="signals")

FileOpt = Path | None


@app.command("check-url")
def check_url_cmd(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The URL to evaluate.")],
    user_agent: Annotated[
        str, typer.Option("--user-agent", help="Crawler token evaluated, e.g. MyBot.")
    ],
    robots_file: Annotated[
        FileOpt, typer.Option("--robots-file", help="Use this robots.txt instead of fetching.")
    ] = None,
    tdmrep_file: Annotated[
        FileOpt, typer.Option("--tdmrep-file", help="Use this tdmrep.json instead of fetching.")
    ] = None,
    aitxt_file: Annotated[
        FileOpt, typer.Option("--aitxt-file", help="Use this ai.txt instead of fetching.")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", help="A response header 'Name: value' (repeatable)."),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Use only the given files and headers; no network.")
    ] = False,
    fail_on_reserved: Annotated[
        bool, typer.Option("--fail-on-reserved", help="Exit 1 when the verdict is reserved.")
    ] = False,
    db: DbOpt = None,
    allow_private: AllowPrivateOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate every URL-level signal (robots.txt, X-Robots-Tag, TDMRep, ai.txt,
    Content-Signal, Content-Usage, RSL) of one URL for one user agent.

    Online, the host documents and the URL's response headers are fetched; when a catalog
    exists at --db they are also recorded as observations (no catalog is needed). With
    --offline only the given files and headers are used, and every signal without input is
    `unknown`, never `allowed`. Each signal's `tokens` also lists the verdicts for the shipped
    AI crawler tokens.
    """
    settings = settings_from(ctx, db=db, allow_private=allow_private)
    report = check_url(
        settings,
        url,
        user_agent,
        offline=offline,
        robots_file=robots_file,
        tdmrep_file=tdmrep_file,
        aitxt_file=aitxt_file,
        headers=header or [],
    )
    if json_out:
        emit_json(report)
    else:
        rows = [
            (s["kind"], s["status"], s.get("detail") or "", s.get("source") or "")
            for s in report["signals"]
        ]
        table(
            f"{url} for {user_agent}: {report['verdict']}",
            ["kind", "status", "detail", "source"],
            rows,
        )
    if fail_on_reserved and report["verdict"] == "reserved":
        raise typer.Exit(1)


@signals_app.command("refresh")
def refresh_cmd(
    ctx: typer.Context,
    domain: Annotated[
        str | None,
        typer.Option("--domain", help="Only hosts of this domain (and its subdomains)."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", help="Only hosts last checked longer ago than this (7d, 12h)."
        ),
    ] = None,
    with_headers: Annotated[
        bool,
        typer.Option("--with-headers", help="Also HEAD every URL (2 at a time per host)."),
    ] = False,
    db: DbOpt = None,
    allow_private: AllowPrivateOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Re-check robots.txt, ai.txt, TDMRep and RSL of the hosts of catalogued sightings and
    record fresh verdicts for every sighting URL. History is kept, never overwritten."""
    settings = settings_from(ctx, db=db, allow_private=allow_private)
    summary = refresh(settings, domain=domain, older_than=older_than, with_headers=with_headers)
    if json_out:
        emit_json(summary)
        return
    say(
        f"{summary['hosts_checked']} hosts checked ({summary['hosts_unreachable']} unreachable, "
        f"{summary['hosts_skipped']} skipped as recent), {summary['urls_evaluated']} URLs evaluated"
    )
    rows = [
        (kind, c["allowed"], c["reserved"], c["unknown"])
        for kind, c in summary["url_verdicts"].items()
    ]
    table("URL verdicts recorded", ["kind", "allowed", "reserved", "unknown"], rows)


def _kind(value: str | None) -> SignalKind | None:
    if value is None:
        return None
    try:
        return SignalKind(value)
    except ValueError:
        names = ", ".join(k.value for k in SignalKind)
        raise BadInput(f"--kind must be one of {names}, got {value!r}") from None


@signals_app.command("history")
def history_cmd(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="A host (example.com), origin or URL.")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this signal kind (robots, tdmrep, ...).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Also show what was current at this time (ISO-8601)."),
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What a host's robots.txt, ai.txt, tdmrep.json and RSL licenses (or a URL's signals)
    said over time: every observation with its time, source and evidence hash."""
    settings = settings_from(ctx, db=db)
    doc = signal_history(settings, subject, _kind(kind), as_of)
    if json_out:
        emit_json(doc)
        return
    observations: list[dict[str, Any]] = doc["current"] if as_of else doc["observations"]
    rows = [
        (
            o["observed_at"],
            o["kind"],
            o["status"],
            o.get("detail") or "",
            o.get("source") or "",
            (o.get("evidence_sha256") or "")[:16],
        )
        for o in observations
    ]
    title = f"{subject} as of {doc['as_of']}" if as_of else subject
    table(title, ["observed", "kind", "status", "detail", "source", "evidence"], rows)
