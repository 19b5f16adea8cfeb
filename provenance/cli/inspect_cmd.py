"""`provenance inspect FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provenance.cli import app
from provenance.cli.common import JsonOpt
from provenance.cli.output import emit_json
from provenance.errors import BadInput
from provenance.services.inspect import InspectReport, inspect_file


def _human(report: InspectReport) -> list[str]:
    doc = report.to_json()
    size = f"{doc['width']}x{doc['height']}" if doc["width"] else "?"
    lines = [
        f"file:     {doc['path']}",
        f"sha256:   {doc['sha256']}",
        f"phash:    {doc['phash'] or '-'} ({doc['phash_alg'] or 'not computed'})",
        f"image:    {doc['format'] or 'unknown format'} {size}, {doc['size']} bytes",
    ]
    if doc["error"]:
        lines.append(f"problem:  {doc['error']}")
    c2pa = doc["c2pa"]
    if c2pa["error"]:
        lines.append(f"C2PA:     manifest unreadable ({c2pa['error']})")
    elif c2pa["present"]:
        codes = ", ".join(c2pa["validation_codes"]) or "none"
        lines.append(f"C2PA:     manifest, validation {c2pa['validation_state']} (codes: {codes})")
        for entry, use in c2pa["training_mining"].items():
            lines.append(f"          {entry}: {use}")
    else:
        lines.append("C2PA:     no manifest")
    lines.append(f"IPTC:     DataMining {doc['iptc_data_mining'] or '(none)'}")
    lines.append("signals:")
    lines += [f"  {s['kind']:<6} {s['status']:<9} {s['detail']}" for s in doc["signals"]]
    if doc["facts"]:
        lines.append("rights facts:")
        lines += [f"  {key}: {_fact(value)}" for key, value in doc["facts"].items()]
    return lines


def _fact(value: Any) -> str:
    return "; ".join(map(str, value)) if isinstance(value, list) else str(value)


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="Image file to inspect.", show_default=False)],
    json_out: JsonOpt = False,
) -> None:
    """Embedded signals and facts of one file: C2PA manifest and validation, IPTC/XMP
    data-mining field, EXIF/XMP rights, sha256, perceptual hash, size. No catalog needed.

    Exits 2 when the file is missing, unreadable or not a whole decodable image (the report of
    what could be read is still printed for files that were read)."""
    report = inspect_file(file)
    if json_out:
        emit_json(report.to_json())
    else:
        for line in _human(report):
            typer.echo(line)
    if report.error:
        raise BadInput(f"{file}: {report.error}")
