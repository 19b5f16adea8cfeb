"""`provenance inspect FILE [--json]` on the real fixtures (../shared/fixtures, expectations.json)
and on bad files: missing, a folder, not an image, truncated, a decompression bomb. No catalog."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import imagehash
import pytest
from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from provenance.cli import app
from provenance.samples import image_bytes
from tests.conftest import fixture_expectations

EXPECTATIONS = fixture_expectations()


def inspect(*args: str) -> Result:
    return CliRunner().invoke(app, ["inspect", *args], catch_exceptions=False)


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_json(name: str, fixtures_dir: Path) -> None:
    want = EXPECTATIONS[name]
    path = fixtures_dir / name
    result = inspect(str(path), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    data = path.read_bytes()
    assert doc["path"] == str(path)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["size"] == want["size_bytes"] == len(data)
    with Image.open(path) as img:
        assert (doc["width"], doc["height"]) == img.size
        assert doc["format"] == img.format.lower()  # type: ignore[union-attr]
    assert isinstance(doc["phash"], str) and len(doc["phash"]) == 16
    c2pa = doc["c2pa"]
    assert set(c2pa) >= {"present", "validation_state", "training_mining", "error"}
    assert c2pa["present"] is want["c2pa_present"]
    assert c2pa["training_mining"] == want["training_mining"]
    if not want.get("network_sensitive"):
        assert c2pa["validation_state"] == want["validation_state"]
        assert c2pa["validation_codes"] == want["error_codes"]
    assert (c2pa["error"] is not None) is want["raises"]
    assert doc["iptc_data_mining"] == want["iptc_data_mining"]
    kinds = {s["kind"]: s for s in doc["signals"]}
    assert set(kinds) == {"c2pa", "iptc"}
    if (
        set(want["training_mining"].values()) & {"notAllowed", "constrained"}
        or want["iptc_data_mining"]
    ):
        assert "reserved" in {s["status"] for s in doc["signals"]}
    if want["raises"]:
        assert kinds["c2pa"]["status"] == "unknown"


def test_phash_is_the_ingest_algorithm(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes(7, (120, 90), "PNG"))
    doc = json.loads(inspect(str(path), "--json").stdout)
    with Image.open(path) as img:
        assert doc["phash"] == str(imagehash.phash(img))
    assert doc["phash_alg"]
    assert (doc["width"], doc["height"], doc["format"]) == (120, 90, "png")


def test_human_output(fixtures_dir: Path) -> None:
    result = inspect(str(fixtures_dir / "iptc/IPTC-PhotometadataRef-Std2024.1.jpg"))
    assert result.exit_code == 0
    assert "DMI-PROHIBITED-GENAIMLTRAINING" in result.stdout
    assert "iptc   reserved" in result.stdout
    assert "ecf90229655c7d82c64980efdb72d49c9e9c13dfde6153aaf2c09e995d453691" in result.stdout
    result = inspect(str(fixtures_dir / "c2pa/C_with_CAWG_data.jpg"))
    assert "cawg.ai_generative_training: notAllowed" in result.stdout
    result = inspect(str(fixtures_dir / "c2pa/no_alg.jpg"))
    assert result.exit_code == 0  # the image is fine; its C2PA signal is unknown
    assert "manifest unreadable" in result.stdout
    assert "c2pa   unknown" in result.stdout


def test_missing_file_and_folder(tmp_path: Path) -> None:
    result = inspect(str(tmp_path / "nope.jpg"), "--json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no such file")
    assert result.stdout == ""
    result = inspect(str(tmp_path))
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_bytes(b"just some text, not a picture")
    result = inspect(str(path), "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc["decode_ok"] is False
    assert "not an image" in doc["error"]
    assert "error:" in result.stderr


def test_truncated_jpeg_still_gets_hash_and_signals(tmp_path: Path) -> None:
    data = image_bytes(5, (400, 300), "JPEG")[:3000]
    path = tmp_path / "cut.jpg"
    path.write_bytes(data)
    result = inspect(str(path), "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["format"] == "jpeg"
    assert doc["error"]
    statuses = {s["kind"]: s["status"] for s in doc["signals"]}
    assert statuses["iptc"] == "unknown"  # pixels not decoded: never "allowed"
    assert set(statuses) == {"c2pa", "iptc"}
    assert "error:" in result.stderr


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30_000, 30_000))  # 900 MP declared in 60 bytes
    result = inspect(str(path), "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert "decompression bomb" in doc["error"]
    assert doc["phash"] is None
    assert doc["c2pa"]["present"] is False
    assert {s["kind"] for s in doc["signals"]} == {"c2pa", "iptc"}
