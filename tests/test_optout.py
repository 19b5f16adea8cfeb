"""optout add / import / list / show / withdraw and the standing rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import Export, ExportMember, ExportShard, Image, OptOutMatch, Sighting
from provenance.errors import BadInput
from provenance.optout import creator_key, normalize_scope, url_scope_matches
from provenance.samples import image_bytes, make_image

SITES = [
    ("https://example.com/art/0.jpg", "Zoë Doe"),
    ("https://CDN.Example.com:443/art/1.jpg#top", "Doe, Zoe"),
    ("https://badexample.com/art/2.jpg", "Max Muster"),
    ("http://other.org/gallery/3.jpg", None),
    ("https://other.org/blog/4.jpg", None),
]


def _folder(tmp_path: Path, start: int = 0) -> Path:
    folder = tmp_path / f"images{start}"
    folder.mkdir()
    for i, (url, creator) in enumerate(SITES):
        (folder / f"{i}.jpg").write_bytes(image_bytes(start + i, size=(96, 72)))
        (folder / f"{i}.json").write_text(json.dumps({"url": url, "creator": creator}))
    return folder


def _add(cli: Any, *args: str, expect: int = 0) -> dict[str, Any]:
    result = cli("optout", "add", *args, "--json", expect=expect)
    return json.loads(result.stdout) if expect == 0 else {}


def _show(cli: Any, request_id: int) -> dict[str, Any]:
    return json.loads(cli("optout", "show", str(request_id), "--json").stdout)


def _matched_urls(settings: Settings, request_id: int) -> list[str]:
    engine = make_engine(settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Sighting.url)
            .join(OptOutMatch, OptOutMatch.sighting_id == Sighting.id)
            .where(OptOutMatch.request_id == request_id)
            .order_by(Sighting.url)
        ).scalars()
        urls = [u for u in rows if u]
    engine.dispose()
    return urls


def test_scopes_match_the_catalog_now(cli: Any, settings: Settings, tmp_path: Path) -> None:
    cli("ingest", str(_folder(tmp_path)), "--json")
    domain = _add(cli, "--domain", "Example.COM", "--requester", "Example Inc")
    assert domain["matched"] == 2  # example.com and cdn.example.com, not badexample.com
    assert _matched_urls(settings, domain["request_id"]) == [SITES[1][0], SITES[0][0]]
    prefix = _add(cli, "--url-prefix", "HTTPS://other.ORG:443/gallery/", "--requester", "O")
    assert _matched_urls(settings, prefix["request_id"]) == [SITES[3][0]]  # http too
    exact = _add(cli, "--url", "https://cdn.example.com/art/1.jpg", "--requester", "C")
    assert exact["matched"] == 1
    creator = _add(cli, "--creator", "ZOE   doe", "--requester", "Zoë")
    assert creator["matched"] == 2  # "Zoë Doe" and "Doe, Zoe"
    sha = image_bytes(2, size=(96, 72))
    by_hash = _add(cli, "--sha256", hashlib.sha256(sha).hexdigest().upper(), "--requester", "M")
    assert _show(cli, by_hash["request_id"])["images"][0]["how"] == "sha256"


def test_same_reference_is_one_request(cli: Any, tmp_path: Path) -> None:
    cli("ingest", str(_folder(tmp_path)), "--json")
    first = _add(cli, "--domain", "example.com", "--requester", "R", "--reference", "T-1")
    again = _add(cli, "--domain", "example.com", "--requester", "R", "--reference", "T-1")
    assert again == first
    unnamed = _add(cli, "--domain", "other.org", "--requester", "R")
    assert _add(cli, "--domain", "OTHER.org.", "--requester", "R") == unnamed
    listed = json.loads(cli("optout", "list", "--json").stdout)["requests"]
    assert listed[0]["reference"] == "T-1"
    assert len(listed) == 2


def test_bad_add_options_exit_2(cli: Any) -> None:
    assert "exactly one" in cli("optout", "add", "--requester", "R", expect=2).stderr
    assert (
        "public suffix"
        in cli("optout", "add", "--domain", "co.uk", "--requester", "R", expect=2).stderr
    )
    cli("optout", "add", "--domain", "example.com", expect=2)  # no requester
    cli("optout", "add", "--sha256", "abc", "--requester", "R", expect=2)
    cli("optout", "add", "--url", "ftp://x.org/a", "--requester", "R", expect=2)
    cli("optout", "add", "--domain", "x.org", "--requester", "R", "--received-at", "soon", expect=2)
    cli("optout", "show", "999", expect=2)


def test_standing_rules_apply_to_later_ingests(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    domain = _add(cli, "--domain", "example.com", "--requester", "R")
    creator = _add(cli, "--creator", "Max Muster", "--requester", "M")
    assert domain["matched"] == 0
    cli("ingest", str(_folder(tmp_path)), "--json")
    assert len(_matched_urls(settings, domain["request_id"])) == 2
    assert _matched_urls(settings, creator["request_id"]) == [SITES[2][0]]
    cli("optout", "withdraw", str(domain["request_id"]))
    cli("ingest", str(_folder(tmp_path, start=10)), "--json")
    assert len(_matched_urls(settings, domain["request_id"])) == 2  # withdrawn: no new matches
    assert len(_matched_urls(settings, creator["request_id"])) == 2


def test_withdraw_keeps_history(cli: Any, tmp_path: Path) -> None:
    cli("ingest", str(_folder(tmp_path)), "--json")
    rid = _add(cli, "--domain", "example.com", "--requester", "R")["request_id"]
    detail = json.loads(cli("optout", "withdraw", str(rid), "--json").stdout)
    assert detail["status"] == "withdrawn" and detail["withdrawn_at"].endswith("Z")
    assert json.loads(cli("optout", "withdraw", str(rid), "--json").stdout)["changed"] is False
    shown = _show(cli, rid)
    assert shown["status"] == "withdrawn" and shown["matched"]["sightings"] == 2
    active = json.loads(cli("optout", "list", "--status", "active", "--json").stdout)
    assert active["requests"] == []


def test_import_keeps_good_rows_and_reports_bad_ones(cli: Any, tmp_path: Path) -> None:
    cli("ingest", str(_folder(tmp_path)), "--json")
    csv_file = tmp_path / "requests.csv"
    csv_file.write_text(
        "scope,value,requester,reference,received_at\n"
        "domain,example.com,Ex,R-1,2026-01-02T03:04:05Z\n"
        "domian,example.org,Ex,R-2,\n"
        "url-prefix,https://other.org/blog/,Blog,R-3,\n"
        "domain,,Ex,R-4,\n"
        "sha256,1234,Ex,R-5,\n"
        "domain,x.org,Ex,R-6,yesterday\n"
        "creator,Max Muster,,R-7,\n"
        "image,a.jpg,Ex,R-8,\n"
    )
    report = json.loads(cli("optout", "import", str(csv_file), "--json").stdout)
    assert (report["rows"], report["imported"], report["rejected"]) == (8, 2, 6)
    assert [e["row"] for e in report["errors"]] == [3, 5, 6, 7, 8, 9]
    reasons = " | ".join(e["reason"] for e in report["errors"])
    for words in ("domian", "no value", "sha256", "received_at", "no requester", "image"):
        assert words in reasons
    assert report["matched"] == 3
    again = json.loads(cli("optout", "import", str(csv_file), "--json").stdout)
    assert (again["imported"], again["existing"]) == (0, 2)
    listed = json.loads(cli("optout", "list", "--json").stdout)["requests"]
    assert listed[0]["received_at"] == "2026-01-02T03:04:05Z"


def test_import_jsonl_and_plain_lists(cli: Any, tmp_path: Path) -> None:
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text(
        '{"scope": "domain", "value": "example.com"}\n{oops\n[1]\n'
        '{"scope": "creator", "value": "Zoë Doe", "requester": "Z"}\n'
    )
    report = json.loads(cli("optout", "import", str(jsonl), "--requester", "Reg", "--json").stdout)
    assert (report["imported"], [e["row"] for e in report["errors"]]) == (2, [2, 3])
    listing = tmp_path / "registry.txt"
    listing.write_text("# do-not-train registry\nexample.net\n*.example.org\n\nnot a domain\n")
    cli("optout", "import", str(listing), "--requester", "Reg", expect=2)  # no --scope
    out = cli("optout", "import", str(listing), "--scope", "domain", "--requester", "Reg", "--json")
    report = json.loads(out.stdout)
    assert (report["imported"], report["errors"][0]["row"]) == (2, 5)


def test_unparseable_files_exit_2(cli: Any, tmp_path: Path) -> None:
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\x00")
    cli("optout", "import", str(binary), expect=2)
    headerless = tmp_path / "y.csv"
    headerless.write_text("domain,example.com\n")
    assert "value" in cli("optout", "import", str(headerless), expect=2).stderr
    cli("optout", "import", str(tmp_path / "missing.csv"), expect=2)
    not_json = tmp_path / "z.jsonl"
    not_json.write_text("a,b\nc,d\n")
    cli("optout", "import", str(not_json), expect=2)


def test_show_names_affected_exports_and_shards(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    cli("ingest", str(_folder(tmp_path)), "--json")
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        shas = sorted(conn.execute(select(Image.sha256)).scalars())
        made = datetime(2026, 1, 1, tzinfo=UTC)
        conn.execute(
            insert(Export),
            [
                {
                    "id": i,
                    "name": f"e{i}",
                    "status": "complete",
                    "out_dir": f"/out/{i}",
                    "policy_name": "p",
                    "policy_sha256": "0" * 64,
                    "policy_text": "",
                    "created_at": made,
                }
                for i in (1, 2)
            ],
        )
        conn.execute(
            insert(ExportShard),
            [
                {
                    "export_id": 1,
                    "shard_index": k,
                    "path": f"/out/1/{k:05d}.tar",
                    "samples": 3,
                    "bytes": 1,
                    "sha256": "0" * 64,
                    "committed_at": made,
                }
                for k in (0, 1)
            ],
        )
        conn.execute(
            insert(ExportMember),
            [
                {"export_id": 1, "image_sha256": sha, "shard_index": k // 3, "position": k % 3}
                for k, sha in enumerate(shas)
            ]
            + [{"export_id": 2, "image_sha256": shas[2], "shard_index": 0, "position": 0}],
        )
    engine.dispose()
    rid = _add(cli, "--domain", "example.com", "--requester", "R")["request_id"]
    shown = _show(cli, rid)
    matched = {i["sha256"] for i in shown["images"]}
    assert len(matched) == 2
    exports = shown["exports"]
    in_export_1 = sum(1 for k, sha in enumerate(shas) if sha in matched)
    assert exports[0]["export_id"] == 1 and exports[0]["samples"] == in_export_1
    assert exports[0]["made_before_request"] is True
    assert {s["path"] for s in exports[0]["shards"]} <= {"/out/1/00000.tar", "/out/1/00001.tar"}
    assert [e["export_id"] for e in exports] == ([1, 2] if shas[2] in matched else [1])
    assert "affected exports" in cli("optout", "show", str(rid)).stdout


@pytest.mark.parametrize(
    ("kind", "value", "url", "expected"),
    [
        ("url", "http://Example.com:80/a%7eb?q=1#x", "https://example.com/a~b?q=1", True),
        ("url", "example.com/a", "https://example.com/A", False),
        ("url-prefix", "example.com/art", "https://example.com/artists/1.jpg", True),
        ("url-prefix", "example.com/art/", "https://cdn.example.com/art/1.jpg", False),
        ("url-prefix", "example.com:8080/", "http://example.com:8080/x", True),
        ("url-prefix", "example.com:8080/", "http://example.com/x", False),
    ],
)
def test_url_rules(kind: str, value: str, url: str, expected: bool) -> None:
    from provenance.optout import url_key

    scope = normalize_scope(kind, value)
    assert url_scope_matches(scope.kind, scope.value, url_key(url)) is expected


def test_creator_names_normalize() -> None:
    assert creator_key("Zoë  Doe") == creator_key("DOE, zoe") == creator_key("Doe Zoë") == "doe zoe"
    assert creator_key("Z. Doe") != creator_key("Zoe Doe")
    assert creator_key("  ,. ") is None
    with pytest.raises(BadInput):
        normalize_scope("creator", "--")


def _signed_by(seed: int, artist: str | None = None, xmp_creators: tuple[str, ...] = ()) -> bytes:
    """A Pillow JPEG naming its creator in EXIF Artist and/or XMP dc:creator."""
    img = make_image(seed, (96, 72))
    exif = img.getexif()
    if artist:
        exif[0x013B] = artist
    kwargs: dict[str, Any] = {"exif": exif.tobytes()}
    if xmp_creators:
        items = "".join(f"<rdf:li>{name}</rdf:li>" for name in xmp_creators)
        kwargs["xmp"] = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description rdf:about="">'
            f"<dc:creator><rdf:Seq>{items}</rdf:Seq></dc:creator>"
            "</rdf:Description></rdf:RDF></x:xmpmeta>").encode()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def _matched_images(settings: Settings, request_id: int) -> dict[str, str]:
    engine = make_engine(settings.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(OptOutMatch.image_sha256, OptOutMatch.how)
            .where(OptOutMatch.request_id == request_id, OptOutMatch.sighting_id.is_(None))
            .order_by(OptOutMatch.image_sha256)).all()
    engine.dispose()
    return {str(sha): str(how) for sha, how in rows}


def test_creator_requests_match_the_names_images_carry(
    cli: Any, settings: Settings, tmp_path: Path
) -> None:
    """A creator's request covers the images naming them in their own metadata (EXIF Artist,
    XMP dc:creator, one of several), whether ingested before the request or after, and none
    that merely resemble the name; the policy then excludes those images as opted out."""
    folder = tmp_path / "signed"
    folder.mkdir()
    files = {"artist": _signed_by(1, artist="Doe, Zoe"),  # EXIF ASCII: Pillow writes no ë
             "xmp": _signed_by(2, xmp_creators=("Ann Other", "ZOE DOE")),
             "other": _signed_by(3, artist="Zoe Doering"),
             "plain": _signed_by(4)}
    for name, data in files.items():
        (folder / f"{name}.jpg").write_bytes(data)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    cli("ingest", str(folder), "--json")
    request = _add(cli, "--creator", "Zoë Doe", "--requester", "Z")
    assert request["matched"] == 2
    assert _matched_images(settings, request["request_id"]) == {
        sha["artist"]: "embedded-creator", sha["xmp"]: "embedded-creator"}

    # Standing: a later image naming her is matched as it is ingested.
    later = tmp_path / "later"
    later.mkdir()
    (later / "new.jpg").write_bytes(_signed_by(5, xmp_creators=("Zoe Doe",)))
    cli("ingest", str(later), "--json")
    new_sha = hashlib.sha256((later / "new.jpg").read_bytes()).hexdigest()
    assert set(_matched_images(settings, request["request_id"])) == {
        sha["artist"], sha["xmp"], new_sha}

    explained = json.loads(cli("policy", "explain", sha["xmp"], "--json", expect=None).stdout)
    assert "opted-out" in [r["code"] for r in explained["reasons"]]
