"""Options shared by every command, so `--db` works before or after the command name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from provenance.cli.output import progress_bar
from provenance.config import Settings, resolve_settings
from provenance.engine import EngineChoice, choose_engine
from provenance.errors import BadInput

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Catalog URL (any SQLAlchemy URL). Env: PROVENANCE_DB.", show_default=False
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help="Content store directory. Env: PROVENANCE_STORE.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
AllowPrivateOpt = Annotated[
    bool,
    typer.Option(
        "--allow-private",
        help="Allow loopback/private addresses (tests). Env: PROVENANCE_ALLOW_PRIVATE=1.",
    ),
]
PartitionOpt = Annotated[
    str | None,
    typer.Option(
        "--partition", help="Do exactly slice I of N, written I/N (0-based).", show_default=False
    ),
]

EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="local (one process) or ray (all --partitions as Ray tasks). Env: PROVENANCE_ENGINE.",
        show_default=False,
    ),
]
PartitionsOpt = Annotated[
    int | None,
    typer.Option(
        "--partitions", help="With --engine ray: how many slices (default: the cores).",
        show_default=False,
    ),
]
EngineAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--engine-address",
        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray on this machine).",
        show_default=False,
    ),
]


def engine_from(
    engine: str | None, partitions: int | None, address: str | None, partition: str | None
) -> tuple[EngineChoice, tuple[int, int] | None]:
    """The engine flags and --partition, validated together."""
    part = parse_partition(partition)
    return choose_engine(engine, partitions, address, part), part


@contextmanager
def partitions_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """One progress bar (stderr, terminals only) over every partition of a distributed run."""
    with progress_bar(label, "partitions") as bar:
        task = bar.add_task(label, total=None)

        def done(finished: int, total: int) -> None:
            bar.update(task, completed=finished, total=total)

        yield done


def settings_from(
    ctx: typer.Context,
    db: str | None = None,
    store: str | None = None,
    allow_private: bool = False,
    user_agent: str | None = None,
) -> Settings:
    """Resolve settings: this command's flags, then the global ones, then env and defaults."""
    root = ctx.find_root().obj or {}
    return resolve_settings(
        db=db or root.get("db"),
        store=store or root.get("store"),
        allow_private=allow_private or bool(root.get("allow_private")),
        user_agent=user_agent,
    )


def parse_partition(text: str | None) -> tuple[int, int] | None:
    """`I/N` -> (I, N) with 0 <= I < N; None when not partitioned."""
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise BadInput(f"--partition must be I/N, e.g. 0/4 (got {text!r})") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise BadInput(f"--partition I/N needs 0 <= I < N (got {text!r})")
    return i, n
