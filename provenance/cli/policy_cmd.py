"""provenance policy check | eval | explain."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import (
    DbOpt,
    EngineAddressOpt,
    EngineOpt,
    JsonOpt,
    PartitionOpt,
    PartitionsOpt,
    engine_from,
    partitions_bar,
    settings_from,
)
from provenance.cli.output import emit_json, out, say, table
from provenance.domain import iso, parse_time, utcnow
from provenance.errors import BadInput
from provenance.policy import Policy, default_policy_path, load_policy
from provenance.services.catalog import open_catalog
from provenance.services.policy import evaluate_catalog, explain
from provenance.services.scale import policy_partitioned

policy_app = typer.Typer(help="Policies as code: validate, evaluate, explain.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")

PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (TOML). Default: the shipped strict policy.",
                 show_default=False),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Decide with the evidence known at this UTC time (ISO-8601).",
                 show_default=False),
]


def _policy(path: Path | None) -> Policy:
    return load_policy(path if path is not None else default_policy_path())


def _as_of(text: str | None) -> tuple[datetime, datetime | None]:
    if text is None:
        return utcnow(), None
    try:
        when = parse_time(text)
    except ValueError:
        raise BadInput(
            f"--as-of must be an ISO-8601 time, e.g. 2026-01-31T00:00:00Z (got {text!r})"
        ) from None
    return when, when


@policy_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Policy file to validate.")],
    json_out: JsonOpt = False,
) -> None:
    """Validate a policy file: exit 0 when valid, 2 naming the key and line when not."""
    policy = load_policy(file)
    doc = {"path": str(file), "name": policy.name, "sha256": policy.sha256, "valid": True,
           "allowed_licenses": sorted(policy.licenses.allowed_spdx),
           "signals": list(policy.signals.kinds), "tokens": list(policy.signals.tokens)}
    if json_out:
        emit_json(doc)
    else:
        say(f"{file}: policy {policy.name!r} is valid ({len(policy.licenses.allowed_spdx)} "
            f"licenses, {len(policy.signals.kinds)} signal kinds)")


@policy_app.command("eval")
def eval_(
    ctx: typer.Context,
    policy_file: PolicyOpt = None,
    as_of: AsOfOpt = None,
    partition: PartitionOpt = None,
    engine: EngineOpt = None,
    partitions: PartitionsOpt = None,
    engine_address: EngineAddressOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Decide every image of the catalog: counts included, excluded and per reason."""
    policy = _policy(policy_file)
    choice, part = engine_from(engine, partitions, engine_address, partition)
    now, when = _as_of(as_of)
    settings = settings_from(ctx, db=db)
    if choice.distributed:
        with partitions_bar("policy eval") as done:
            result = policy_partitioned(settings, policy, now, when, choice, done)
    else:
        catalog = open_catalog(settings)
        try:
            result = evaluate_catalog(catalog, policy, now, partition=part, as_of=when)
        finally:
            catalog.dispose()
    doc = result.to_json()
    if json_out:
        emit_json(doc)
        return
    table(f"policy {policy.name}: {doc['included']} of {doc['total']} included",
          ["reason", "images"], sorted(doc["excluded"].items()))
    say(f"included {doc['included']}, excluded {doc['excluded_total']} of {doc['total']}"
        + (f" (as of {iso(result.as_of)})" if result.as_of else ""))


@policy_app.command("explain")
def explain_cmd(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="sha256 of the image, or a unique prefix.")],
    policy_file: PolicyOpt = None,
    as_of: AsOfOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Say why one image is included or excluded, rule by rule, with the evidence used."""
    policy = _policy(policy_file)
    now, when = _as_of(as_of)
    engine = open_catalog(settings_from(ctx, db=db))
    try:
        result = explain(engine, policy, key, now, as_of=when)
    finally:
        engine.dispose()
    if json_out:
        emit_json(result.to_json())
        return
    verdict = "INCLUDED" if result.decision.include else "EXCLUDED"
    out.print(f"{result.key}: {verdict} by policy {policy.name}", markup=False)
    for outcome in result.rules:
        mark = "ok " if outcome.ok else "NO "
        out.print(f"  {mark} {outcome.rule}: {outcome.detail}", markup=False)
        for e in outcome.evidence:
            when_txt = f" @ {iso(e.observed_at)}" if e.observed_at else ""
            out.print(f"        {e.what} #{e.ref}{when_txt}: {e.detail or ''}", markup=False)
    for reason in result.decision.reasons:
        out.print(f"  reason {reason.code}: {reason.detail}", markup=False)
