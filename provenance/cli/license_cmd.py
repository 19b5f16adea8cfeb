"""license normalize: map a license string or URL to SPDX (no catalog needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import JsonOpt
from provenance.cli.output import emit_json
from provenance.domain import LicenseInfo
from provenance.licenses import normalize_license

license_app = typer.Typer(
    help="License strings and URLs: SPDX ids and permission facts.", no_args_is_help=True
)
app.add_typer(license_app, name="license")


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def describe(info: LicenseInfo) -> str:
    """One line for people: the SPDX id (or why there is none), family, version and facts."""
    head = info.spdx_id or f"not recognized: {info.input!r}"
    if info.family is None and info.commercial_use is None:
        return head
    kind = " ".join(part for part in (info.family, info.version) if part)
    facts = (
        f"commercial use: {_yes_no(info.commercial_use)}, "
        f"derivatives: {_yes_no(info.derivatives)}, "
        f"attribution: {_yes_no(info.attribution)}, "
        f"share-alike: {_yes_no(info.share_alike)}"
    )
    if info.spdx_id is None:
        head += ", a known license without an SPDX id"
    return f"{head} ({kind}; {facts})" if kind else f"{head} ({facts})"


@license_app.command("normalize")
def normalize(
    text: Annotated[str, typer.Argument(help="A license name, SPDX id or expression, or URL.")],
    json_out: JsonOpt = False,
) -> None:
    """Map a license string or URL to an SPDX id, or report it unrecognised (exit 0 either way)."""
    info = normalize_license(text)
    if json_out:
        emit_json(info.to_json())
    else:
        # Plain echo, not rich: license text may contain "[...]" that rich would read as markup.
        typer.echo(describe(info))
