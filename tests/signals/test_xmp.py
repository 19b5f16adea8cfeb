"""IPTC/PLUS `plus:DataMining` and EXIF/XMP rights facts.

Vectors: the PLUS "Data Mining" vocabulary (https://ns.useplus.org/ldf/vocab/DMI, used by the IPTC
Photo Metadata Standard 2023.1+) for every DMI-* value, and the IPTC reference images in
../shared/fixtures/iptc (see fixtures/README.md) with their observed values in expectations.json.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from provenance.domain import SignalKind, SignalStatus
from provenance.samples import make_image
from provenance.signals.embedded import read_embedded
from provenance.signals.xmp import iptc_signal, rights_facts
from tests.conftest import fixture_expectations

EXPECTATIONS = fixture_expectations()
VOCAB = "http://ns.useplus.org/ldf/vocab/"


def xmp_packet(properties: str) -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/"'
        ' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
        f"{properties}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def jpeg_with(xmp: bytes | None, exif: Image.Exif | None = None) -> Image.Image:
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if xmp is not None:
        kwargs["xmp"] = xmp
    if exif is not None:
        kwargs["exif"] = exif
    make_image(1, (32, 24)).save(buf, "JPEG", **kwargs)
    return Image.open(io.BytesIO(buf.getvalue()))


def dm(value: str, constraints: str = "") -> Image.Image:
    other = (
        "<plus:OtherConstraints><rdf:Alt>"
        f'<rdf:li xml:lang="x-default">{constraints}</rdf:li>'
        "</rdf:Alt></plus:OtherConstraints>"
        if constraints
        else ""
    )
    return jpeg_with(xmp_packet(f"<plus:DataMining>{value}</plus:DataMining>{other}"))


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("DMI-PROHIBITED-AIMLTRAINING", SignalStatus.RESERVED),
        ("DMI-PROHIBITED-GENAIMLTRAINING", SignalStatus.RESERVED),
        ("DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING", SignalStatus.RESERVED),
        ("DMI-PROHIBITED", SignalStatus.RESERVED),
        ("DMI-ALLOWED", SignalStatus.ALLOWED),
        ("DMI-UNSPECIFIED", SignalStatus.ALLOWED),
        ("DMI-SEE-CONSTRAINT", SignalStatus.UNKNOWN),
        ("DMI-SEE-EMBEDDED-RIGHTS-EXPR", SignalStatus.UNKNOWN),
        ("DMI-SEE-LINKED-RIGHTS-EXPR", SignalStatus.UNKNOWN),
        ("DMI-SOMETHING-NEW", SignalStatus.UNKNOWN),
    ],
)
def test_every_dmi_value_as_uri_and_as_code(value: str, status: SignalStatus) -> None:
    for written in (VOCAB + value, value):
        sig = iptc_signal(dm(written))
        assert sig.kind == SignalKind.IPTC
        assert sig.status == status, written
        assert sig.extra["data_mining"] == written
        assert sig.evidence is not None and "DataMining" in sig.evidence


def test_unspecified_says_no_statement() -> None:
    assert iptc_signal(dm(VOCAB + "DMI-UNSPECIFIED")).detail == "no data-mining statement"


def test_see_constraint_reads_the_other_constraints() -> None:
    prohibited = iptc_signal(dm("DMI-SEE-CONSTRAINT", "Use for AI training is prohibited"))
    assert prohibited.status == SignalStatus.RESERVED
    vague = iptc_signal(dm("DMI-SEE-CONSTRAINT", "Ask the photographer"))
    assert vague.status == SignalStatus.UNKNOWN
    assert "Ask the photographer" in vague.detail
    assert vague.extra["other_constraints"] is not None


def test_no_xmp_and_xmp_without_field_are_no_statement() -> None:
    for img in (jpeg_with(None), jpeg_with(xmp_packet("<dc:format>image/jpeg</dc:format>"))):
        sig = iptc_signal(img)
        assert (sig.status, sig.detail) == (SignalStatus.ALLOWED, "no data-mining statement")
        assert sig.extra == {"data_mining": None, "other_constraints": None}


def test_empty_getxmp_with_xmp_present_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    # What Pillow does without defusedxml: XMP bytes present, getxmp() == {}.
    img = dm("DMI-PROHIBITED")
    monkeypatch.setattr(img, "getxmp", lambda: {})
    sig = iptc_signal(img)
    assert sig.status == SignalStatus.UNKNOWN
    assert "defusedxml" in sig.detail


def test_missing_getxmp_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    img = dm("DMI-PROHIBITED")
    monkeypatch.delattr(Image.Image, "getxmp")
    assert iptc_signal(img).status == SignalStatus.UNKNOWN


def test_malformed_and_hostile_xmp_are_unknown() -> None:
    assert iptc_signal(jpeg_with(b"<x:xmpmeta><unclosed")).status == SignalStatus.UNKNOWN
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>'
    )
    assert iptc_signal(jpeg_with(bomb)).status == SignalStatus.UNKNOWN


def test_png_itxt_and_webp_xmp() -> None:
    packet = xmp_packet("<plus:DataMining>DMI-PROHIBITED-AIMLTRAINING</plus:DataMining>")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode())
    png, webp = io.BytesIO(), io.BytesIO()
    make_image(2, (16, 16)).save(png, "PNG", pnginfo=info)
    make_image(2, (16, 16)).save(webp, "WEBP", xmp=packet)
    for buf in (png, webp):
        assert iptc_signal(Image.open(io.BytesIO(buf.getvalue()))).status == SignalStatus.RESERVED


def test_rights_facts_from_exif_and_xmp() -> None:
    exif = Image.Exif()
    exif[315] = "Ada Photographer"
    exif[33432] = "(c) 2024 Ada"
    props = (
        "<dc:creator><rdf:Seq><rdf:li>Ada Photographer</rdf:li><rdf:li>Bob</rdf:li>"
        "</rdf:Seq></dc:creator>"
        '<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">All rights reserved</rdf:li>'
        "</rdf:Alt></dc:rights>"
        "<xmpRights:WebStatement>https://ada.example/license</xmpRights:WebStatement>"
        "<photoshop:Credit>Ada / Agency</photoshop:Credit>"
    )
    facts = rights_facts(jpeg_with(xmp_packet(props), exif))
    assert facts == {
        "exif_artist": "Ada Photographer",
        "exif_copyright": "(c) 2024 Ada",
        "creator": ["Ada Photographer", "Bob"],
        "rights": "All rights reserved",
        "web_statement": "https://ada.example/license",
        "credit": "Ada / Agency",
    }
    assert rights_facts(jpeg_with(None)) == {}


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_data_mining(name: str, fixtures_dir: Path) -> None:
    want = EXPECTATIONS[name]
    path = fixtures_dir / name
    with Image.open(path) as img:
        sig = iptc_signal(img)
        signals, facts = read_embedded(path.read_bytes(), img, None)
    assert sig.extra["data_mining"] == want["iptc_data_mining"]
    if want["iptc_data_mining"]:
        assert sig.status == SignalStatus.RESERVED
        assert sig.extra["other_constraints"] == want["iptc_other_constraints"]
    else:
        assert sig.status == SignalStatus.ALLOWED
    assert [s.kind for s in signals] == [SignalKind.C2PA, SignalKind.IPTC]
    assert signals[1] == sig
    if name.startswith("iptc/"):
        assert facts["exif_artist"].startswith("Creator1")
        assert facts["web_statement"].startswith("https://example.com/WebStatementOfRights")
        assert facts["iim_byline"].startswith("Creator1")  # legacy IPTC-IIM 2:80


def test_read_embedded_without_a_decoded_image(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "c2pa/C_with_CAWG_data.jpg").read_bytes()
    (c2pa, iptc), facts = read_embedded(data, None, "image/jpeg")
    assert c2pa.status == SignalStatus.RESERVED
    assert iptc.status == SignalStatus.UNKNOWN
    assert facts == {}


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: xmp_packet(t)))
def test_never_raises_on_arbitrary_xmp(packet: bytes) -> None:
    img = Image.new("RGB", (4, 4))
    img.info["xmp"] = packet
    sig = iptc_signal(img)
    assert sig.status in (SignalStatus.ALLOWED, SignalStatus.RESERVED, SignalStatus.UNKNOWN)
    assert isinstance(rights_facts(img), dict)
