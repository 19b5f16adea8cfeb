"""Column batches of URL-only manifests (Parquet or CSV without a `path` column): the input
of the columnar ingest path, which makes the same rows as the per-row readers, faster.

Batches hold exactly `batch_rows` rows (the last one fewer) so that windows, and with them the
order in which rows are inserted, match the generic path's windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.ingest.readers import Manifest, SightingInput, open_parquet, parquet_rows
from provenance.ingest.textranges import ByteRange, csv_header, csv_rows


@dataclass
class UrlRowBatch:
    """Consecutive rows of a manifest without a `path` column, as raw columns: rows that carry
    only URLs and metadata, which the columnar fast path turns into `pending` sightings."""

    manifest: Manifest
    first_row: int  # the row number of the first row (1-based, as in `#row=N` origins)
    raw: dict[str, list[Any]]  # column name -> values
    size: int
    broken: dict[int, str] = field(default_factory=dict)  # row index -> why it is bad

    def column(self, name: str) -> list[Any] | None:
        """The raw values of the column that feeds catalog field `name`, if there is one."""
        for col, field_name in self.manifest.fields:
            if field_name == name:
                return self.raw[col]
        return None

    def origin(self, index: int) -> str:
        return f"{self.manifest.origin}#row={self.first_row + index}"

    def item(self, index: int) -> SightingInput:
        """Row `index` as the generic reader would have yielded it."""
        if index in self.broken:
            return SightingInput("manifest-row", self.origin(index), error=self.broken[index])
        record = {col: values[index] for col, values in self.raw.items()}
        return self.manifest.item(self.origin(index), record)


def _url_only(manifest: Manifest) -> bool:
    return all(name != "path" for _col, name in manifest.fields)


def _parquet_batches(
    source: Path, batch_rows: int, row_group: int | None
) -> Iterator[UrlRowBatch] | None:
    pfile = open_parquet(source)
    manifest = Manifest.of(source, list(pfile.schema_arrow.names))
    if not _url_only(manifest):
        return None

    def batches() -> Iterator[UrlRowBatch]:
        # Exactly batch_rows rows each (Parquet row groups may cut batches short), so that
        # windows, and with them the order rows are inserted in, match the generic path.
        first, batches = parquet_rows(pfile, batch_rows, row_group)
        names = pfile.schema_arrow.names
        held: dict[str, list[Any]] = {name: [] for name in names}
        for batch in batches:
            for i, name in enumerate(names):
                held[name].extend(batch.column(i).to_pylist())
            while len(held[names[0]]) >= batch_rows:
                raw = {name: values[:batch_rows] for name, values in held.items()}
                held = {name: values[batch_rows:] for name, values in held.items()}
                yield UrlRowBatch(manifest, first, raw, batch_rows)
                first += batch_rows
        if names and held[names[0]]:
            yield UrlRowBatch(manifest, first, held, len(held[names[0]]))

    return batches()


def _csv_batches(
    source: Path, batch_rows: int, part: ByteRange | None
) -> Iterator[UrlRowBatch] | None:
    header = csv_header(source)
    # Repeated header names: csv.DictReader keeps the last column of a name; leave that to it.
    if len(set(header)) != len(header) or not _url_only(Manifest.of(source, header)):
        return None
    return _csv_batch_stream(source, header, batch_rows, part)


def _csv_batch_stream(
    source: Path, header: list[str], batch_rows: int, part: ByteRange | None
) -> Iterator[UrlRowBatch]:
    manifest = Manifest.of(source, header)
    width = len(header)
    first = 0
    rows: list[list[str]] = []
    broken: dict[int, str] = {}
    for row_number, line_number, row in csv_rows(source, part):
        if not rows:
            first = row_number
        if len(row) > width:
            broken[len(rows)] = (
                f"row {row_number} (line {line_number}) has more fields than the header"
            )
            row = row[:width]
        rows.append(row)
        if len(rows) >= batch_rows:
            yield _csv_batch(manifest, header, first, rows, broken)
            rows, broken = [], {}
    if rows:
        yield _csv_batch(manifest, header, first, rows, broken)


def _csv_batch(
    manifest: Manifest,
    header: list[str],
    first: int,
    rows: list[list[str]],
    broken: dict[int, str],
) -> UrlRowBatch:
    width = len(header)
    # Short rows: csv.DictReader fills the missing fields with None.
    padded = [row if len(row) == width else row + [None] * (width - len(row)) for row in rows]
    columns = list(zip(*padded, strict=True)) if padded else []
    raw = {name: list(values) for name, values in zip(header, columns, strict=True)}
    return UrlRowBatch(manifest, first, raw, len(rows), broken)


def manifest_url_batches(
    source: Path, batch_rows: int, row_group: int | None = None, part: ByteRange | None = None
) -> Iterator[UrlRowBatch] | None:
    """Column batches of a Parquet or CSV manifest without a `path` column (of one Parquet row
    group or one CSV byte range, if given); None for other manifests (JSONL, or rows that may
    name local files), which go through manifest_inputs."""
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return _csv_batches(source, batch_rows, part)
    if suffix == ".parquet":
        return _parquet_batches(source, batch_rows, row_group)
    return None
