"""provenance demo: the whole flow, offline, on generated images, narrated."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from typer.main import get_command

from provenance.cli import app
from provenance.cli.output import err
from provenance.errors import ProvenanceError
from provenance.services.demo import local_site, prepare_dir, write_data


def _run(args: list[str], *, expect: tuple[int, ...] = (0,)) -> int:
    """Run one real `provenance` command in-process and show it as a user would type it."""
    err.print(f"\n[bold cyan]$ provenance {shlex.join(args)}[/bold cyan]")
    command = get_command(app)
    try:
        command.main(args=args, prog_name="provenance", standalone_mode=False)
        code = 0
    except typer.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        code = int(exc.code or 0)
    if code not in expect:
        raise ProvenanceError(
            f"demo step failed with exit code {code}: provenance {shlex.join(args)}"
        )
    return code


def _say(text: str) -> None:
    err.print(f"\n[bold]{text}[/bold]")


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's data and catalog (re-created).")
    ] = Path("provenance-demo"),
) -> None:
    """Run the whole flow offline on generated images, narrated: ingest, signals, fetch,
    policy, export, opt-out, audit, reports."""
    root = directory.resolve()
    prepare_dir(root)
    db = f"sqlite:///{root / '.provenance' / 'catalog.db'}"
    base = ["--db", db, "--store", str(root / ".provenance" / "objects")]
    with local_site(root / "site") as site_url:
        data = write_data(root, site_url)
        _say("1. A catalog: SQLite by default (PostgreSQL with --db postgresql+psycopg://...).")
        _run([*base, "init"])
        _say("2. Ingest the team's own photos and an img2dataset shard (sidecar .json/.txt).")
        _run(
            [
                *base,
                "ingest",
                str(data.photos),
                "--source-name",
                "team-photos",
                "--license",
                "CC0-1.0",
            ]
        )
        _run([*base, "ingest", str(data.scraped), "--source-name", "laion-sample"])
        _say("3. License strings and URLs become SPDX ids with permission facts.")
        _run(["license", "normalize", "https://creativecommons.org/licenses/by-nc-sa/3.0/de/"])
        _say(
            "4. Embedded opt-outs are read at ingest: one scraped file's XMP prohibits AI training."
        )
        _run([*base, "inspect", str(data.scraped / "000000100.jpg")])
        _say(
            "5. A URL manifest is ingested as pending sightings, then fetched politely: "
            "robots.txt first, X-Robots-Tag read, reserved URLs never requested."
        )
        _run([*base, "ingest", str(data.manifest), "--source-name", "site-crawl"])
        _run([*base, "--allow-private", "fetch", "--user-agent", "GPTBot"])
        _say("6. What every signal says about one URL, from files given offline.")
        robots = root / "site" / "robots.txt"
        _run(
            [
                *base,
                "check-url",
                f"{site_url}/private/photo-0.jpg",
                "--user-agent",
                "GPTBot",
                "--robots-file",
                str(robots),
                "--header",
                "X-Robots-Tag: noai",
                "--offline",
            ]
        )
    _finish(root, base)


def _finish(root: Path, base: list[str]) -> None:
    out = root / "export-strict"
    policy = str(Path(__file__).resolve().parents[1] / "policies" / "research-noncommercial.toml")
    _say("7. The policy decides: counts per reason, and why one image is in or out.")
    _run([*base, "policy", "eval", "--policy", policy])
    _say("8. Export writes WebDataset shards of permitted images only, with a manifest.")
    _run([*base, "export", "--policy", policy, "--out", str(out), "--name", "demo"])
    _say("9. A rights holder sends a resized copy of their picture: matched perceptually.")
    _run(
        [
            *base,
            "optout",
            "add",
            "--image",
            str(root / "takedown-request.jpg"),
            "--requester",
            "Photographer 3",
            "--reference",
            "TKD-2026-001",
        ]
    )
    _run([*base, "exports", "revocations", "1"])
    _say(
        "10. Before the GPU run: audit the shards on disk. The opted-out picture is caught (exit 1)."
    )
    _run([*base, "audit", str(out), "--policy", policy], expect=(0, 1))
    _say("11. For compliance: reports and the tamper-evident log.")
    _run([*base, "report", "licenses"])
    _run([*base, "log", "verify"])
    _say(
        f"Done. The demo's catalog is {root / '.provenance' / 'catalog.db'}; "
        f"try: provenance --db sqlite:///{root / '.provenance' / 'catalog.db'} report composition"
    )
