"""CSV and JSON Lines manifests split by byte ranges read to exactly the rows of the whole file.

Property tests write manifests with quoted line breaks, stray quotes, CRLF and bare CR line
ends, blank lines, a BOM, short and long rows and invalid lines, cut them at arbitrary byte
offsets, and compare the ranges' rows (numbers, line numbers, fields, errors) with one read of
the whole file. A partitioned `provenance ingest` of such manifests gives the single run's
catalog on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import Sighting
from provenance.errors import BadInput
from provenance.ingest import textranges
from provenance.ingest.readers import manifest_inputs
from provenance.ingest.textranges import ByteRange, csv_rows, jsonl_lines, split_ranges
from tests.conftest import Cli

FIELD = st.text(alphabet=st.sampled_from(list('ab é,"\r\n;x')), max_size=8)
ROWS = st.lists(st.lists(FIELD, min_size=1, max_size=4), max_size=12)
TERMINATORS = st.sampled_from(["\n", "\r\n", "\r"])


def _cuts(size: int, data: st.DataObject) -> list[ByteRange]:
    points = sorted(set(data.draw(st.lists(st.integers(0, size), max_size=6))) - {0, size})
    bounds = [0, *points, size]
    return [ByteRange(a, b) for a, b in itertools.pairwise(bounds)]


def _csv_bytes(rows: list[list[str]], terminator: str, bom: bool, blank_every: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=terminator)
    writer.writerow(["url", "caption", "license"])
    for k, row in enumerate(rows):
        writer.writerow(row)
        if blank_every and k % blank_every == 0:
            out.write(terminator)
    if rows and rows[-1] == ["x"]:
        out.write('stray"quote,unquoted "field"')  # last line, no terminator
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, terminator=TERMINATORS, bom=st.booleans(), blank_every=st.integers(0, 3),
       data=st.data())
def test_csv_ranges_read_the_rows_of_the_whole_file(
    tmp_path: Path, rows: list[list[str]], terminator: str, bom: bool, blank_every: int,
    data: st.DataObject,
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(_csv_bytes(rows, terminator, bom, blank_every))
    whole = list(csv_rows(path, None))
    parts = [row for part in _cuts(path.stat().st_size, data) for row in csv_rows(path, part)]
    assert parts == whole


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
           st.dictionaries(st.sampled_from(["url", "caption"]), FIELD, max_size=2)
           .map(json.dumps),
           st.sampled_from(["", "   ", "{not json", "[1, 2]", '"é\\u2028"'])), max_size=12),
       crlf=st.booleans(), final_newline=st.booleans(), data=st.data())
def test_jsonl_ranges_read_the_lines_of_the_whole_file(
    tmp_path: Path, lines: list[str], crlf: bool, final_newline: bool, data: st.DataObject
) -> None:
    path = tmp_path / "m.jsonl"
    end = "\r\n" if crlf else "\n"
    path.write_bytes((end.join(lines) + (end if final_newline else "")).encode("utf-8"))
    whole = list(jsonl_lines(path, None))
    parts = [line for part in _cuts(path.stat().st_size, data)
             for line in jsonl_lines(path, part)]
    assert parts == whole


def test_line_ends_split_across_read_blocks_like_text_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(textranges, "_BLOCK", 3)  # `\r\n` straddles many block ends
    raw = b'url,caption\r\nhttps://a.example/1,"two\r\nlines"\r\rhttps://b.example/2,x\rlast,row'
    path = tmp_path / "m.csv"
    path.write_bytes(raw)
    with path.open("rb") as fh:
        pieces = list(textranges.lines_with_offsets(fh))
    with path.open(newline="", encoding="utf-8") as fh:
        assert [p.decode() for _o, p in pieces] == list(fh)
    assert [o for o, _p in pieces] == [sum(len(p) for _o, p in pieces[:k])
                                       for k in range(len(pieces))]
    whole = list(csv_rows(path, None))
    assert [r[2] for r in whole] == [["https://a.example/1", "two\r\nlines"],
                                     ["https://b.example/2", "x"], ["last", "row"]]
    for count in range(1, 9):
        assert [r for p in split_ranges(len(raw), count) for r in csv_rows(path, p)] == whole


def test_inputs_of_ranges_are_the_inputs_of_the_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        'URL,TEXT,extra\nhttps://a.example/1.jpg,"multi\nline",1\n\n'
        "https://b.example/2.jpg,short\nhttps://c.example/3.jpg,too,many,fields\n"
        'ftp://d.example/4.jpg,"quote "" inside",4\n', encoding="utf-8")
    jsonl_path = tmp_path / "m.jsonl"
    jsonl_path.write_text('{"url": "https://a.example/1.jpg"}\n\n{broken\n[1]\n'
                          '{"url": "https://b.example/2.jpg", "caption": "c"}\n', encoding="utf-8")
    for path in (csv_path, jsonl_path):
        whole = list(manifest_inputs(path))
        for count in range(1, 8):
            ranged = [i for p in split_ranges(path.stat().st_size, count)
                      for i in manifest_inputs(path, None, p)]
            assert ranged == whole, (path.name, count)
        assert any(i.error for i in whole) and any(i.url for i in whole)


def test_a_range_without_objects_of_a_file_without_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("{bad\n" * 50 + '{"url": "https://a.example/x.jpg"}\n', encoding="utf-8")
    first = split_ranges(path.stat().st_size, 4)[0]
    assert all(i.error for i in manifest_inputs(path, None, first))  # others have an object
    path.write_text("{bad\n" * 60, encoding="utf-8")
    with pytest.raises(BadInput, match="no line is a JSON object"):
        list(manifest_inputs(path, None, first))


def _rows(url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Sighting.__table__)).mappings().all()
    engine.dispose()
    return sorted((r["sighting_key"], r["status"], r["url"], r["origin"], r["caption"],
                   r["error"], r["extra"]) for r in rows)


def test_partitioned_ingest_of_text_manifests_equals_one_run(
    cli: Cli, sqlite_template: Path, tmp_path: Path
) -> None:
    rows = [[f"https://h{k % 5}.example.org/{k}.jpg", f"caption {k}" + ("\nsecond line" if k % 4
             == 0 else ""), "CC-BY-4.0" if k % 2 else ""] for k in range(60)]
    rows[7][0] = "ftp://bad.example/7"  # a bad row: its row number is part of its key
    (tmp_path / "m.csv").write_bytes(_csv_bytes(rows, "\r\n", True, 5))
    lines = [json.dumps({"url": r[0], "caption": "j" + r[1], "n": k}) + "\n"
             + ("\n" if k % 9 == 0 else "") for k, r in enumerate(rows)]
    (tmp_path / "m.jsonl").write_text("".join(lines) + "{broken\n", encoding="utf-8")
    sources = [str(tmp_path / "m.csv"), str(tmp_path / "m.jsonl")]
    # Five byte ranges per file; partition i gets range i of the CSV and of the JSONL.
    runs = [json.loads(cli("ingest", *sources, "--partition", f"{i}/5", "--source-name", "m",
                           "--json").stdout) for i in range(5)]
    assert all(run["sightings_new"] > 10 for run in runs)
    single_db = tmp_path / "single.db"
    shutil.copy(sqlite_template, single_db)
    single = Cli(Settings(db_url=f"sqlite:///{single_db}", store_dir=tmp_path / "o2"))
    single("ingest", *sources, "--source-name", "m")
    assert _rows(cli.settings.db_url) == _rows(single.settings.db_url)
    assert len(_rows(single.settings.db_url)) == 121
