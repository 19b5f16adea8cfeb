"""Ingest from every source kind, idempotence, and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sqlalchemy import func, select

from provenance.db.engine import make_engine
from provenance.db.models import Image as ImageRow
from provenance.db.models import Sighting
from provenance.samples import image_bytes
from tests.conftest import Cli


def _ingest(cli: Cli, *args: str, expect: int = 0) -> dict[str, Any]:
    result = cli("ingest", *args, "--workers", "1", "--json", expect=expect)
    return json.loads(result.stdout) if expect == 0 else {"stderr": result.stderr}


def _rows(url: str, model: Any, *where: Any) -> list[Any]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(select(model.__table__).where(*where)).mappings())
    engine.dispose()
    return rows


def _count(url: str, model: Any) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    engine.dispose()
    return n


def _img2dataset_folder(root: Path, n: int) -> list[str]:
    shas = []
    for i in range(n):
        data = image_bytes(i)
        shas.append(hashlib.sha256(data).hexdigest())
        (root / f"{i:09d}.jpg").write_bytes(data)
        (root / f"{i:09d}.json").write_text(
            json.dumps(
                {
                    "url": f"https://img.example.com/p/{i}.jpg",
                    "key": f"{i:09d}",
                    "status": "success",
                    "LICENSE": "https://creativecommons.org/licenses/by-sa/4.0/",
                    "sha256": "0" * 64,
                    "width": 320,
                    "height": 240,
                }
            )
        )
        (root / f"{i:09d}.txt").write_text(f"a picture number {i}")
    return shas


def test_folder_with_sidecars_then_reingest_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "shard"
    folder.mkdir()
    shas = _img2dataset_folder(folder, 5)
    first = _ingest(cli, str(folder), "--source-name", "laion-part")
    assert (first["images_new"], first["sightings_new"], first["bad"]) == (5, 5, 0)
    rows = _rows(cli.settings.db_url, Sighting)
    by_sha = {r["image_sha256"]: r for r in rows}
    assert set(by_sha) == set(shas)
    row = by_sha[shas[2]]
    assert row["url"] == "https://img.example.com/p/2.jpg"
    assert row["domain"] == "example.com" and row["host"] == "img.example.com"
    assert row["caption"] == "a picture number 2"
    assert row["license_raw"] == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert row["license_spdx"] == "CC-BY-SA-4.0"
    assert row["claimed_sha256"] == "0" * 64  # img2dataset's hash of the downloaded bytes
    assert row["source_name"] == "laion-part"
    images = {r["sha256"]: r for r in _rows(cli.settings.db_url, ImageRow)}
    assert images[shas[0]]["width"] == 320 and images[shas[0]]["format"] == "jpeg"
    assert len(images[shas[0]]["phash"]) == 16
    second = _ingest(cli, str(folder), "--source-name", "laion-part")
    assert (second["images_new"], second["sightings_new"], second["duplicates"]) == (0, 0, 5)
    assert _count(cli.settings.db_url, Sighting) == 5


def test_same_bytes_twice_is_one_image_two_sightings(cli: Cli, tmp_path: Path) -> None:
    data = image_bytes(7)
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "b.jpg").write_bytes(data)
    summary = _ingest(cli, str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"))
    assert summary["images_new"] == 1
    assert summary["sightings_new"] == 2
    assert summary["duplicates"] == 1
    assert _count(cli.settings.db_url, ImageRow) == 1


def test_laion_style_manifests_make_pending_sightings(cli: Cli, tmp_path: Path) -> None:
    csv_path = tmp_path / "urls.csv"
    csv_path.write_text(
        "URL,TEXT,LICENSE,similarity\n"
        "https://a.example.org/1.jpg,first,CC BY 4.0,0.31\n"
        "https://b.example.net/2.jpg,second,,0.29\n"
        "ftp://c.example.com/3.jpg,third,,0.1\n"
        ",no url,,0.2\n"
    )
    jsonl_path = tmp_path / "urls.jsonl"
    jsonl_path.write_text(
        json.dumps({"url": "https://d.example.org/4.png", "caption": "fourth", "creator": "Ann"})
        + "\n"
        + "{not json\n"
    )
    parquet_path = tmp_path / "urls.parquet"
    pq.write_table(
        pa.table({"URL": ["https://e.example.org/5.jpg"], "TEXT": ["fifth"], "LICENSE": ["cc0"]}),
        parquet_path,
    )
    summary = _ingest(cli, str(csv_path), str(jsonl_path), str(parquet_path))
    assert summary["pending_fetch"] == 4
    assert summary["bad"] == 3
    reasons = sorted(b["reason"] for b in summary["bad_items"])
    assert any("ftp" in r for r in reasons)
    assert any("no url" in r for r in reasons)
    assert any("invalid JSON" in r for r in reasons)
    pending = _rows(cli.settings.db_url, Sighting, Sighting.status == "pending")
    by_url = {r["url"]: r for r in pending}
    assert by_url["https://a.example.org/1.jpg"]["license_spdx"] == "CC-BY-4.0"
    assert by_url["https://a.example.org/1.jpg"]["caption"] == "first"
    assert json.loads(by_url["https://a.example.org/1.jpg"]["extra"])["similarity"] == "0.31"
    assert by_url["https://d.example.org/4.png"]["creator"] == "Ann"
    assert by_url["https://e.example.org/5.jpg"]["license_spdx"] == "CC0-1.0"
    assert 0 <= by_url["https://e.example.org/5.jpg"]["host_bucket"] < 65536
    again = _ingest(cli, str(csv_path), str(jsonl_path), str(parquet_path))
    assert again["sightings_new"] == 0 and again["pending_fetch"] == 0


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def test_webdataset_tar_from_img2dataset_with_hostile_members(cli: Cli, tmp_path: Path) -> None:
    shard = tmp_path / "00000.tar"
    with tarfile.open(shard, "w") as tar:
        for i in range(3):
            _tar_add(tar, f"00000{i:04d}.jpg", image_bytes(100 + i))
            _tar_add(
                tar,
                f"00000{i:04d}.json",
                json.dumps({"url": f"https://x.example.com/{i}.jpg"}).encode(),
            )
            _tar_add(tar, f"00000{i:04d}.txt", f"caption {i}".encode())
        _tar_add(tar, "../escape.jpg", image_bytes(1))
        _tar_add(tar, "/etc/abs.jpg", image_bytes(2))
        link = tarfile.TarInfo("link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        _tar_add(tar, "huge.jpg", b"\xff" * 200_000)
    summary = _ingest(cli, str(shard), "--max-bytes", "100000")
    assert summary["images_new"] == 3
    reasons = " | ".join(b["reason"] for b in summary["bad_items"])
    assert "'..'" in reasons and "absolute path" in reasons and "symlink" in reasons
    assert "larger than the limit" in reasons
    assert summary["bad"] == 4
    rows = _rows(cli.settings.db_url, Sighting, Sighting.status == "ok")
    assert sorted(r["caption"] for r in rows) == ["caption 0", "caption 1", "caption 2"]
    assert all(r["origin"].startswith(str(shard)) and r["local_offset"] for r in rows)
    assert not (tmp_path.parent / "escape.jpg").exists()


def test_bad_image_files_are_recorded_and_the_run_goes_on(cli: Cli, tmp_path: Path) -> None:
    good = image_bytes(3, size=(200, 150))
    (tmp_path / "good.jpg").write_bytes(good)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_bytes(b"this is not a png")
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, "PNG")  # 144 MP, a few KB on disk
    (tmp_path / "bomb.png").write_bytes(bomb.getvalue())
    summary = _ingest(cli, str(tmp_path))
    reasons = {Path(b["origin"]).name: b["reason"] for b in summary["bad_items"]}
    assert set(reasons) == {"empty.jpg", "truncated.jpg", "text.png", "bomb.png"}
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["text.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert "decode" in reasons["truncated.jpg"]
    assert summary["images_new"] >= 1
    images = {r["sha256"]: r for r in _rows(cli.settings.db_url, ImageRow)}
    assert images[hashlib.sha256(good).hexdigest()]["decode_ok"] is True


def test_unparseable_manifest_exits_2_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    no_url = tmp_path / "x.csv"
    no_url.write_text("name,caption\na,b\n")
    out = _ingest(cli, str(no_url), expect=2)
    assert "no `url` column" in out["stderr"]
    garbage = tmp_path / "y.parquet"
    garbage.write_bytes(b"PAR1 garbage")
    assert "Parquet" in _ingest(cli, str(garbage), expect=2)["stderr"]
    binary = tmp_path / "z.csv"
    binary.write_bytes(b"url\nhttps://a.example.com/1.jpg\n\xff\xfe\x00bad")
    assert "UTF-8" in _ingest(cli, str(binary), expect=2)["stderr"]
    assert _count(cli.settings.db_url, Sighting) == 0
    assert "no such file" in _ingest(cli, str(tmp_path / "missing.csv"), expect=2)["stderr"]


def test_partitions_together_equal_one_run(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    _img2dataset_folder(folder, 6)
    totals = [_ingest(cli, str(folder), "--partition", f"{i}/3")["images_new"] for i in range(3)]
    assert sum(totals) == 6 and all(t == 2 for t in totals)
    assert _ingest(cli, str(folder))["images_new"] == 0
    assert "I/N" in cli("ingest", str(folder), "--partition", "3/3", expect=2).stderr


def test_process_pool_gives_the_same_rows(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    shas = _img2dataset_folder(folder, 8)
    result = cli("ingest", str(folder), "--workers", "2", "--json")
    assert json.loads(result.stdout)["images_new"] == 8
    assert {r["sha256"] for r in _rows(cli.settings.db_url, ImageRow)} == set(shas)


def test_show_lists_image_sightings_and_embedded_signals(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    shas = _img2dataset_folder(folder, 1)
    _ingest(cli, str(folder))
    doc = json.loads(cli("show", shas[0][:10], "--json").stdout)
    assert doc["sha256"] == shas[0]
    assert doc["sightings"][0]["url"] == "https://img.example.com/p/0.jpg"
    assert doc["sightings"][0]["license_spdx"] == "CC-BY-SA-4.0"
    assert {s["kind"] for s in doc["signals"]} >= {"c2pa", "iptc"}
    assert all(s["observed_at"].endswith("Z") for s in doc["signals"])
    assert cli("show", "ffffff", expect=2).stderr.startswith("error:")


@pytest.mark.parametrize(
    "name", ["c2pa/C_with_CAWG_data.jpg", "iptc/IPTC-PhotometadataRef-Std2024.1.jpg"]
)
def test_embedded_reservations_are_recorded_at_ingest(
    cli: Cli, fixtures_dir: Path, name: str
) -> None:
    path = fixtures_dir / name
    _ingest(cli, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = json.loads(cli("show", sha, "--json").stdout)
    statuses = {s["kind"]: s["status"] for s in doc["signals"]}
    assert "reserved" in statuses.values()


def test_image_files_of_one_source_are_hashed_together() -> None:
    from provenance.services.ingest import Unit, unit_groups

    units = [
        Unit(Path("/a/1.jpg"), "image", "s"),
        Unit(Path("/a/2.jpg"), "image", "s"),
        Unit(Path("/a/3.tar"), "tar", "s"),
        Unit(Path("/a/4.jpg"), "image", "s"),
        Unit(Path("/b/5.jpg"), "image", "t"),
        Unit(Path("/b/6.csv"), "manifest", "t"),
    ]
    groups = [[u.path.name for u in g] for g in unit_groups(units)]
    assert groups == [["1.jpg", "2.jpg"], ["3.tar"], ["4.jpg"], ["5.jpg"], ["6.csv"]]


def test_one_parquet_manifest_is_split_by_row_groups_across_partitions(
    cli: Cli, tmp_path: Path, sqlite_template: Path
) -> None:
    import shutil

    urls: list[str | None] = [f"https://h{i % 4}.example.org/{i}.jpg" for i in range(14)]
    urls.insert(7, None)  # a bad row: its origin (row number) is part of its key
    manifest = tmp_path / "laion.parquet"
    pq.write_table(
        pa.table({"URL": urls, "TEXT": [f"caption {i}" for i in range(15)]}),
        manifest, row_group_size=3,
    )
    assert pq.ParquetFile(manifest).metadata.num_row_groups == 5
    runs = [_ingest(cli, str(manifest), "--partition", f"{i}/3") for i in range(3)]
    # 5 groups of 3 rows: partition 0 gets groups 0 and 3, 1 gets 1 and 4, 2 gets group 2,
    # which holds the bad row
    assert [r["pending_fetch"] for r in runs] == [6, 6, 2]
    assert sum(r["bad"] for r in runs) == 1

    single_db = tmp_path / "single.db"
    shutil.copy(sqlite_template, single_db)
    single = Cli(cli.settings.__class__(db_url=f"sqlite:///{single_db}",
                                        store_dir=tmp_path / "o2"))
    _ingest(single, str(manifest))

    def rows(url: str) -> list[tuple[Any, ...]]:
        got = _rows(url, Sighting)
        return sorted(
            (r["sighting_key"], r["status"], r["url"], r["origin"], r["caption"], r["host_bucket"])
            for r in got
        )

    assert rows(cli.settings.db_url) == rows(single.settings.db_url)
    assert len(rows(cli.settings.db_url)) == 15
