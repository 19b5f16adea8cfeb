"""Image requests match copies of the picture, not unrelated pictures (SQLite and PostgreSQL).

Measured (bench/optout.py, this file): pHash of generated 640x480 pictures vs copies resized
to 1/4, JPEG quality 20-50, PNG, and cropped 2-5% (centred or one-sided): at most 6 bits from
the nearest of the request's 36 crop probes (3,000 copies: 69% at 0, 29% at 2, 2.5% at 4,
0.2% at 6); the nearest of 1,000 unrelated generated pictures is at 8 bits or more (200
requests; median 14). Hence DEFAULT_MAX_DISTANCE = 6. Without crop probes a 5% crop moves
the pHash by up to 24 bits, which no threshold separates from unrelated pictures.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from provenance.config import Settings
from provenance.db.catalog import record_images
from provenance.db.engine import make_engine
from provenance.db.models import OptOutMatch
from provenance.domain import ImageFacts, utcnow
from provenance.ingest.analyze import analyze_bytes
from provenance.samples import image_bytes, make_image

REQUESTED = (1, 2, 3)


def _encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _copies(seed: int) -> dict[str, bytes]:
    img = make_image(seed, (480, 360))
    w, h = img.size
    return {
        "resized": _encode(img.resize((w // 3, h // 3))),
        "jpeg-q25": _encode(img, quality=25),
        "png": _encode(img, "PNG"),
        "crop-2%-centre": _encode(img.crop((5, 4, w - 5, h - 4))),
        "crop-5%-corner": _encode(img.crop((24, 18, w, h))),
        "crop-4%-side-small": _encode(
            img.crop((0, 0, w - 19, h)).resize((w // 2, h // 2)), quality=60
        ),
    }


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """1,000 unrelated generated pictures plus copies of the requested ones (hashed once)."""
    unrelated = [analyze_bytes(image_bytes(50_000 + s), embedded=False) for s in range(1000)]
    copies = {
        (seed, name): analyze_bytes(data, embedded=False)
        for seed in REQUESTED
        for name, data in _copies(seed).items()
    }
    return {"unrelated": unrelated, "copies": copies}


def _catalog(settings: Settings, facts: list[ImageFacts]) -> None:
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        record_images(conn, facts, None, utcnow())
    engine.dispose()


def _matches(settings: Settings, request_id: int) -> dict[str, int | None]:
    engine = make_engine(settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(OptOutMatch.image_sha256, OptOutMatch.distance).where(
                OptOutMatch.request_id == request_id
            )
        ).all()
    engine.dispose()
    return {sha: dist for sha, dist in rows}


def test_copies_match_and_unrelated_do_not(
    cli: Any, settings: Settings, tmp_path: Path, corpus: dict[str, Any]
) -> None:
    copies: dict[tuple[int, str], ImageFacts] = corpus["copies"]
    _catalog(settings, corpus["unrelated"] + list(copies.values()))
    for seed in REQUESTED:
        request = tmp_path / f"request-{seed}.jpg"
        request.write_bytes(_encode(make_image(seed, (480, 360)), quality=95))
        out = cli("optout", "add", "--image", str(request), "--requester", "R", "--json")
        matched = _matches(settings, json.loads(out.stdout)["request_id"])
        expected = {f.sha256 for (s, _), f in copies.items() if s == seed}
        assert set(matched) == expected, {
            name: f.sha256 in matched for (s, name), f in copies.items() if s == seed
        }
        assert all(d is not None and d <= 6 for d in matched.values())


def test_later_ingest_matches_a_copy(cli: Any, settings: Settings, tmp_path: Path) -> None:
    request = tmp_path / "request.png"
    request.write_bytes(_encode(make_image(7, (320, 240)), "PNG"))
    rid = json.loads(
        cli("optout", "add", "--image", str(request), "--requester", "R", "--json").stdout
    )["request_id"]
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "copy.jpg").write_bytes(
        _encode(make_image(7, (320, 240)).resize((160, 120)), quality=40)
    )
    (folder / "other.jpg").write_bytes(image_bytes(8))
    cli("ingest", str(folder), "--json")
    shown = json.loads(cli("optout", "show", str(rid), "--json").stdout)
    assert [i["how"] for i in shown["images"]] == ["phash"]
    assert shown["images"][0]["sha256"] == analyze_bytes((folder / "copy.jpg").read_bytes()).sha256


def test_max_distance_is_validated(cli: Any, tmp_path: Path) -> None:
    request = tmp_path / "r.jpg"
    request.write_bytes(image_bytes(1))
    cli(
        "optout",
        "add",
        "--image",
        str(request),
        "--max-distance",
        "40",
        "--requester",
        "R",
        expect=2,
    )
    cli("optout", "add", "--domain", "x.org", "--max-distance", "3", "--requester", "R", expect=2)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    cli("optout", "add", "--image", str(tmp_path / "bad.jpg"), "--requester", "R", expect=2)
