"""provenance demo: the whole flow, offline, on generated images, narrated."""

from __future__ import annotations

import hashlib
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
        # standalone_mode=False returns the exit code of typer.Exit instead of raising it
        result = command.main(args=args, prog_name="provenance", standalone_mode=False)
        code = result if isinstance(result, int) else 0
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
        _say(
            "6. The img2dataset shard never read robots.txt: refresh its URLs' signals "
            "(robots.txt family from the host, headers by HEAD) without downloading again."
        )
        _run([*base, "--allow-private", "signals", "refresh", "--with-headers"])
        _say("7. What every signal says about one URL, from files given offline.")
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
    _finish(root, base, data.policy)


def _finish(root: Path, base: list[str], policy_path: Path) -> None:
    out = root / "export-1"
    policy = str(policy_path)
    _say(
        f"8. The policy ({policy_path.name}, strict plus the team's photos as a trusted source) "
        "decides: counts per reason, and why one image is out."
    )
    _run([*base, "policy", "eval", "--policy", policy])
    reserved = hashlib.sha256((root / "scraped-shard" / "000000100.jpg").read_bytes()).hexdigest()
    _run([*base, "policy", "explain", reserved[:12], "--policy", policy])
    _say("9. Export writes WebDataset shards of permitted images only, with a manifest.")
    _run([*base, "export", "--policy", policy, "--out", str(out), "--name", "demo"])
    _say(
        "10. A rights holder sends a resized copy of their picture: matched perceptually, "
        "and export 1 turns out to contain it."
    )
    _run(
        [
            *base,
            "optout",
            "add",
            "--image",
            str(root / "takedown-request.jpg"),
            "--requester",
            "Photographer 0",
            "--reference",
            "TKD-2026-001",
        ]
    )
    _run([*base, "exports", "revocations", "1"])
    _say(
        "11. Before the GPU run: audit the shards on disk. The opted-out picture is caught "
        "(exit 1)."
    )
    _run([*base, "audit", str(out), "--policy", policy], expect=(1,))
    _say("12. A clean export without it, and the audit passes.")
    _run([*base, "exports", "rewrite", "1", "--out", str(root / "export-2")])
    _run([*base, "audit", str(root / "export-2"), "--policy", policy])
    _say("13. For compliance: reports and the tamper-evident log.")
    _run([*base, "report", "licenses"])
    _run([*base, "report", "exports"])
    _run([*base, "report", "optouts"])
    _run(
        [*base, "report", "composition", "--export", "2", "--html", str(root / "composition.html")]
    )
    _run(
        [
            *base,
            "report",
            "training-summary",
            "--export",
            "2",
            "--about",
            str(root / "about.toml"),
            "--out",
            str(root / "eu-summary"),
        ]
    )
    _run(
        [
            *base,
            "report",
            "crawler",
            "--about",
            str(root / "about.toml"),
            "--out",
            str(root / "crawler-page"),
        ]
    )
    _run([*base, "log", "show", "--limit", "5"])
    _run([*base, "log", "verify"])
    catalog = root / ".provenance" / "catalog.db"
    _say(
        f"Done. Explore the demo's catalog: provenance --db sqlite:///{catalog} report composition"
    )
