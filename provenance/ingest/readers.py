"""Readers that turn sources into sighting inputs: image files, folders with img2dataset-style
sidecars, manifests (.csv, .jsonl, .parquet) and WebDataset tars.

Readers do no hashing and no database work; they describe where bytes are and what metadata
came with them. Rows and members that are bad are yielded as inputs with `error` set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from provenance.errors import BadInput
from provenance.ingest.tarsafe import IMAGE_EXTS, TarProblem, image_member, iter_tar
from provenance.ingest.textranges import ByteRange, csv_header, csv_rows, jsonl_lines

MANIFEST_EXTS = frozenset({".csv", ".jsonl", ".parquet"})
# Field names accepted in manifests and sidecars (case-insensitive), by catalog column.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "url": ("url", "image_url", "img_url"),
    "license_raw": ("license", "licence", "license_url"),
    "caption": ("caption", "text", "alt", "alt_text"),
    "creator": ("creator", "author", "artist"),
    "title": ("title",),
    "claimed_sha256": ("sha256",),
    "path": ("path", "file", "filepath"),
    "tags": ("tags", "keywords", "categories"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in FIELD_ALIASES.items() for alias in aliases}
# img2dataset bookkeeping fields that are facts about the download, kept in `extra`.
PARQUET_BATCH_ROWS = 50_000


@dataclass
class SightingInput:
    """One place an image or URL was seen, before hashing."""

    origin_kind: str  # file | tar-member | manifest-row
    origin: str
    url: str | None = None
    license_raw: str | None = None
    caption: str | None = None
    creator: str | None = None
    title: str | None = None
    tags: list[str] | None = None
    claimed_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    local_path: str | None = None
    local_offset: int | None = None
    local_length: int | None = None
    error: str | None = None

    @property
    def has_bytes(self) -> bool:
        return self.local_path is not None and self.error is None


def text_value(value: Any) -> str | None:
    """A manifest value as trimmed text; None for missing, empty and NaN."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas-written files
        return None
    text = str(value).strip()
    return text or None


def tag_values(value: Any) -> list[str] | None:
    """Tags from a list or a comma/semicolon separated text; None when there are none."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value if str(v).strip()]
    else:
        items = [t.strip() for t in str(value).replace(";", ",").split(",") if t.strip()]
    return items or None


def apply_fields(item: SightingInput, record: Mapping[str, Any]) -> str | None:
    """Copy known fields (case-insensitive) into the input, the rest into `extra`.
    Returns the `path` field if present."""
    path: str | None = None
    for raw_key, value in record.items():
        name = _ALIAS_TO_FIELD.get(str(raw_key).strip().lower())
        if name is None:
            if value is not None and value != "":
                item.extra[str(raw_key)] = (
                    value if isinstance(value, int | float | bool) else str(value)
                )
            continue
        if name == "tags":
            item.tags = tag_values(value)
        elif name == "path":
            path = text_value(value)
        elif getattr(item, name) is None:
            setattr(item, name, text_value(value))
    return path


# --------------------------------------------------------------------------- files and folders


def _sidecar_record(image: Path) -> tuple[dict[str, Any], str | None]:
    """img2dataset-style `<stem>.json` and `<stem>.txt` beside an image."""
    record: dict[str, Any] = {}
    error = None
    json_path, txt_path = image.with_suffix(".json"), image.with_suffix(".txt")
    if json_path.is_file():
        try:
            loaded = json.loads(json_path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                record.update(loaded)
            else:
                error = f"sidecar {json_path.name} is not a JSON object"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            error = f"unreadable sidecar {json_path.name}: {exc}"
    if txt_path.is_file() and "caption" not in {k.lower() for k in record}:
        try:
            record["caption"] = txt_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            error = f"unreadable sidecar {txt_path.name}: {exc}"
    return record, error


def file_input(image: Path) -> SightingInput:
    path = str(image.resolve())
    item = SightingInput(origin_kind="file", origin=path, local_path=path)
    record, sidecar_error = _sidecar_record(image)
    apply_fields(item, record)
    if sidecar_error:
        item.extra["sidecar_error"] = sidecar_error
    if image.is_symlink():
        item.error = "symbolic link: not followed"
    return item


def is_image_name(path: Path) -> bool:
    return path.suffix.lower().lstrip(".") in IMAGE_EXTS


def folder_entries(folder: Path) -> Iterator[Path]:
    """Image files and tar shards below a folder, sorted by path (deterministic)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (is_image_name(path) or path.suffix.lower() == ".tar"):
            yield path


# --------------------------------------------------------------------------- tars


def tar_inputs(tar_path: Path, max_member_bytes: int) -> Iterator[SightingInput]:
    """One input per WebDataset sample with an image member; problems as bad inputs."""
    archive = str(tar_path.resolve())
    for entry in iter_tar(archive, max_member_bytes):
        if isinstance(entry, TarProblem):
            yield SightingInput(
                origin_kind="tar-member", origin=f"{archive}#{entry.member}", error=entry.reason
            )
            continue
        found = image_member(entry)
        if found is None:
            continue  # e.g. a lone .json of a failed download: no image, nothing to record
        _ext, member = found
        item = SightingInput(
            origin_kind="tar-member",
            origin=f"{archive}#{member.name}",
            local_path=archive,
            local_offset=member.offset,
            local_length=member.size,
        )
        record: dict[str, Any] = {}
        for ext in ("json", "txt"):
            side = entry.members.get(ext)
            if side is None:
                continue
            try:
                with open(archive, "rb") as fh:
                    fh.seek(side.offset)
                    raw = fh.read(min(side.size, 1 << 20))
                if ext == "json":
                    loaded = json.loads(raw.decode("utf-8"))
                    if isinstance(loaded, dict):
                        record.update(loaded)
                else:
                    record.setdefault("caption", raw.decode("utf-8").strip())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                item.extra[f"{ext}_error"] = str(exc)
        # img2dataset's `caption` lives in .txt; its json `key`/`status` are kept as facts.
        apply_fields(item, record)
        yield item


# --------------------------------------------------------------------------- manifests


def _check_columns(columns: list[str], source: Path) -> None:
    lowered = {c.strip().lower() for c in columns}
    if not lowered & set(FIELD_ALIASES["url"]) and not lowered & set(FIELD_ALIASES["path"]):
        raise BadInput(
            f"{source}: manifest has no `url` column (columns: {', '.join(columns) or 'none'})"
        )


@dataclass(frozen=True)
class Manifest:
    """Per-file facts resolved once, not per row: where it is and what its columns mean."""

    base_dir: Path
    origin: str
    fields: tuple[tuple[str, str], ...]  # (raw column, catalog field)
    extras: tuple[str, ...]

    @classmethod
    def of(cls, source: Path, columns: list[str]) -> Manifest:
        _check_columns(columns, source)
        fields: list[tuple[str, str]] = []
        taken: set[str] = set()
        extras: list[str] = []
        for col in columns:
            name = _ALIAS_TO_FIELD.get(col.strip().lower())
            if name is None:
                extras.append(col)
            elif name not in taken:  # the first column of several aliases wins
                fields.append((col, name))
                taken.add(name)
        resolved = source.resolve()
        return cls(resolved.parent, str(resolved), tuple(fields), tuple(extras))

    def item(self, origin: str, record: Mapping[str, Any]) -> SightingInput:
        item = SightingInput(origin_kind="manifest-row", origin=origin)
        path: str | None = None
        for col, name in self.fields:
            value = record.get(col)
            if name == "tags":
                item.tags = tag_values(value)
            elif name == "path":
                path = text_value(value)
            else:
                setattr(item, name, text_value(value))
        for col in self.extras:
            value = record.get(col)
            if value is not None and value != "":
                item.extra[col] = value if isinstance(value, int | float | bool) else str(value)
        if path:
            local = (self.base_dir / path).resolve()
            if local.is_file():
                item.local_path = str(local)
            else:
                item.extra["path"] = path
                if not item.url:
                    item.error = f"file {path!r} named by the manifest does not exist"
        if not item.url and not item.local_path and not item.error:
            item.error = "row has no url"
        return item


def csv_inputs(source: Path, part: ByteRange | None = None) -> Iterator[SightingInput]:
    """Inputs of a CSV manifest (of the rows that start in `part`), rows read as
    csv.DictReader reads them: short rows padded with None, longer rows bad."""
    header = csv_header(source)
    manifest = Manifest.of(source, header)
    width = len(header)
    for row_number, line_number, row in csv_rows(source, part):
        origin = f"{manifest.origin}#row={row_number}"
        if len(row) > width:
            yield SightingInput(
                "manifest-row",
                origin,
                error=f"row {row_number} (line {line_number}) has more fields than the header",
            )
            continue
        yield manifest.item(origin, dict(zip(header, row + [None] * (width - len(row)),
                                             strict=True)))


def jsonl_inputs(source: Path, part: ByteRange | None = None) -> Iterator[SightingInput]:
    """Inputs of a JSON Lines manifest (of the lines that start in `part`). Lines end at `\n`,
    as the JSON Lines format has it."""
    parsed_any = False
    first_error: str | None = None
    origin_base = str(source.resolve())
    for line_number, line in jsonl_lines(source, part):
        if not line.strip():
            continue
        origin = f"{origin_base}#line={line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            first_error = first_error or f"line {line_number}: {exc}"
            yield SightingInput("manifest-row", origin, error=f"invalid JSON: {exc}")
            continue
        if not isinstance(record, dict):
            yield SightingInput("manifest-row", origin, error="line is not a JSON object")
            continue
        parsed_any = True
        yield Manifest.of(source, list(record)).item(origin, record)
    # A file with no JSON object at all is not a manifest; a range without one may be part of
    # a file that has them elsewhere, which the other ranges read.
    if not parsed_any and first_error and (part is None or not _any_json_object(source)):
        raise BadInput(f"{source}: no line is a JSON object; first error at {first_error}")


def _any_json_object(source: Path) -> bool:
    for _number, line in jsonl_lines(source, None):
        try:
            if isinstance(json.loads(line), dict):
                return True
        except json.JSONDecodeError:
            continue
    return False


def open_parquet(source: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise BadInput(f"{source}: not a readable Parquet file: {exc}") from exc


def parquet_row_groups(source: Path) -> int:
    """How many row groups a Parquet manifest has (the units a partitioned ingest splits)."""
    return int(open_parquet(source).metadata.num_row_groups)


def parquet_rows(
    pfile: pq.ParquetFile, batch_rows: int, row_group: int | None
) -> tuple[int, Iterator[Any]]:
    """(number of the first row, record batches) of the whole file or of one row group; row
    numbers count from the start of the file either way, so origins do not depend on the split."""
    if row_group is None:
        return 1, pfile.iter_batches(batch_size=batch_rows)
    before = sum(pfile.metadata.row_group(g).num_rows for g in range(row_group))
    return before + 1, pfile.iter_batches(batch_size=batch_rows, row_groups=[row_group])


def parquet_inputs(source: Path, row_group: int | None = None) -> Iterator[SightingInput]:
    pfile = open_parquet(source)
    manifest = Manifest.of(source, list(pfile.schema_arrow.names))
    first, batches = parquet_rows(pfile, PARQUET_BATCH_ROWS, row_group)
    row_number = first - 1
    for batch in batches:
        for record in batch.to_pylist():
            row_number += 1
            yield manifest.item(f"{manifest.origin}#row={row_number}", record)


def manifest_inputs(
    source: Path, row_group: int | None = None, part: ByteRange | None = None
) -> Iterator[SightingInput]:
    """Inputs of a manifest (`row_group` selects one row group of a Parquet file, `part` a
    byte range of a CSV or JSON Lines file)."""
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return csv_inputs(source, part)
    if suffix == ".jsonl":
        return jsonl_inputs(source, part)
    return parquet_inputs(source, row_group)
