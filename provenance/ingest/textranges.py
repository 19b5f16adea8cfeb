"""Byte ranges of CSV and JSON Lines manifests, so that one huge text manifest spreads over the
partitions of a scaled-out ingest the way a Parquet manifest spreads by row groups.

A range [start, end) owns the records whose first byte lies in it. Every range is read to the
same rows, row numbers and errors as the whole file read at once:

- JSON Lines: a record is one line (the JSON Lines format ends lines with `\\n`; JSON text cannot
  hold a raw line break). A range seeks to its first line start and numbers lines by counting
  `\\n` before it, which reads the prefix at memory speed without parsing it.
- CSV: a quoted field may hold line breaks and a stray quote in an unquoted field is literal
  text, so no byte scan can find record starts. A range parses the file from the top with the
  same `csv` reader, over lines split exactly as text mode with `newline=""` splits them
  (`\\r\\n`, `\\n` or `\\r`), and keeps the records that start inside it. Parsing the prefix costs
  about 1 us a row, a tenth of what writing a row costs.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from provenance.errors import BadInput

_BLOCK = 1 << 20
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\n|\r)")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of a file: the records that start there."""

    start: int
    end: int


def split_ranges(size: int, count: int) -> list[ByteRange]:
    """`count` ranges of about equal size covering bytes [0, size)."""
    count = max(1, min(count, size)) if size else 1
    bounds = [size * k // count for k in range(count + 1)]
    return [ByteRange(bounds[k], bounds[k + 1]) for k in range(count)]


def lines_with_offsets(fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(offset, line with its terminator) of every line of a file read from its start, split at
    `\r\n`, `\n` or `\r` as text mode with newline="" splits."""
    pos, held = 0, b""
    while True:
        block = fh.read(_BLOCK)
        data = held + block
        taken = 0
        for match in _LINE.finditer(data):
            if block and match.end() == len(data) and data.endswith(b"\r"):
                break  # a `\r` that ends a block may be the first half of `\r\n`
            yield pos + match.start(), match.group()
            taken = match.end()
        held = data[taken:]
        pos += taken
        if not block:
            if held:
                yield pos, held  # a last line without a terminator
            return


def _decoded(line: bytes, offset: int, source: Path) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{source}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})"
        ) from exc


def jsonl_lines(source: Path, part: ByteRange | None) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines of a JSON Lines file (of those starting in `part`)."""
    with source.open("rb") as fh:
        start, line_number = 0, 1
        if part is not None and part.start > 0:
            fh.seek(part.start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # inside a line: it belongs to the range where it starts
            start = fh.tell()
            line_number += _count_newlines(fh, start)
            fh.seek(start)
        end = part.end if part is not None else None
        offset = start
        for raw in fh:
            if end is not None and offset >= end:
                return
            yield line_number, _decoded(raw, offset, source)
            offset += len(raw)
            line_number += 1


def _count_newlines(fh: BinaryIO, upto: int) -> int:
    fh.seek(0)
    count, left = 0, upto
    while left > 0:
        block = fh.read(min(_BLOCK * 16, left))
        if not block:
            break
        count += block.count(b"\n")
        left -= len(block)
    return count


@contextmanager
def _csv_errors(source: Path) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError as exc:
        raise BadInput(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise BadInput(f"{source}: CSV cannot be parsed: {exc}") from exc


def csv_header(source: Path) -> list[str]:
    """The first record of a CSV file: its column names."""
    with _csv_errors(source), source.open(newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def csv_rows(source: Path, part: ByteRange | None) -> Iterator[tuple[int, int, list[str]]]:
    """(row number, line number, fields) of each data row of a CSV file (of those that start
    in `part`). Blank lines are skipped and not counted, as csv.DictReader does; row numbers
    count data rows from 1 over the whole file, line numbers are the csv reader's."""
    with _csv_errors(source):
        if part is None:
            yield from _whole_rows(source)
        else:
            yield from _ranged_rows(source, part)


def _whole_rows(source: Path) -> Iterator[tuple[int, int, list[str]]]:
    with source.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        row_number = 0
        for row in reader:
            if row:
                row_number += 1
                yield row_number, reader.line_num, row


def _ranged_rows(source: Path, part: ByteRange) -> Iterator[tuple[int, int, list[str]]]:
    with source.open("rb") as fh:
        lines = _OffsetLines(fh, source)
        reader = csv.reader(lines)
        next(reader, None)
        row_number = 0
        while True:
            start = lines.next_offset()  # the reader reads no further than a record's end
            if start is None or start >= part.end:
                return
            row = next(reader, None)
            if row is None:
                return
            if row:
                row_number += 1
                if start >= part.start:
                    yield row_number, reader.line_num, row


class _OffsetLines:
    """Decoded lines for csv.reader that know the byte offset of the next line to be read."""

    def __init__(self, fh: BinaryIO, source: Path) -> None:
        self.source = source
        self.lines = lines_with_offsets(fh)
        self.peeked: tuple[int, bytes] | None = None
        self.first = True

    def next_offset(self) -> int | None:
        if self.peeked is None:
            self.peeked = next(self.lines, None)
        return None if self.peeked is None else self.peeked[0]

    def __iter__(self) -> _OffsetLines:
        return self

    def __next__(self) -> str:
        if self.next_offset() is None:
            raise StopIteration
        assert self.peeked is not None
        offset, raw = self.peeked
        self.peeked = None
        if self.first:
            self.first = False
            if raw.startswith(_BOM):  # utf-8-sig, as the whole-file reader decodes
                raw, offset = raw[len(_BOM):], offset + len(_BOM)
        return _decoded(raw, offset, self.source)
