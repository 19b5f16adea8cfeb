"""C2PA signal against the real files in ../shared/fixtures/c2pa (from contentauth/c2pa-rs and
contentauth/c2pa-node, see fixtures/README.md) and their observed values in expectations.json."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.samples import image_bytes, make_image
from provenance.signals.c2pa import c2pa_signal, manifest_signal, may_hold_manifest, sniff_mime
from tests.conftest import fixture_expectations

EXPECTATIONS = fixture_expectations()


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_matches_expectations(name: str, fixtures_dir: Path) -> None:
    want = EXPECTATIONS[name]
    sig = c2pa_signal((fixtures_dir / name).read_bytes(), None)
    assert sig.kind == SignalKind.C2PA
    extra = sig.extra
    assert extra["present"] is want["c2pa_present"]
    assert extra["training_mining"] == want["training_mining"]
    assert extra["assertion_labels"] == want.get("assertion_labels", [])
    if not want.get("network_sensitive"):
        assert extra["validation_state"] == want["validation_state"]
        assert extra["validation_codes"] == want["error_codes"]
    if want["raises"]:
        assert sig.status == SignalStatus.UNKNOWN
        assert extra["error"] and "unknown algorithm" in extra["error"]
    else:
        assert extra["error"] is None
    uses = set(want["training_mining"].values())
    if uses & {"notAllowed", "constrained"}:
        # Including testv2.jpg, whose manifest does not validate: a reservation stays reserved.
        assert sig.status == SignalStatus.RESERVED
    elif not want["c2pa_present"]:
        assert (sig.status, sig.detail) == (SignalStatus.ALLOWED, "no C2PA manifest")
    elif not want["raises"]:
        assert sig.status == SignalStatus.ALLOWED
        if not want["training_mining"]:
            assert sig.detail.startswith("no training-mining assertion")
    if extra["present"] and not want["raises"]:
        assert sig.evidence and json.loads(sig.evidence)["active_manifest"]


def test_allowed_from_an_invalid_manifest_says_so(fixtures_dir: Path) -> None:
    sig = c2pa_signal(
        (fixtures_dir / "c2pa/adobe_connected_identities.jpg").read_bytes(), "image/jpeg"
    )
    assert sig.status == SignalStatus.ALLOWED
    if sig.extra["validation_state"] == "Invalid":
        assert "manifest does not validate" in sig.detail


def test_invalid_manifest_without_training_mining_says_so(fixtures_dir: Path) -> None:
    sig = c2pa_signal((fixtures_dir / "c2pa/XCA.jpg").read_bytes(), "image/jpeg")
    assert sig.extra["validation_state"] == "Invalid"
    assert "manifest does not validate" in sig.detail


def test_wrong_mime_hint_is_corrected_by_sniffing(fixtures_dir: Path) -> None:
    sig = c2pa_signal((fixtures_dir / "c2pa/C_with_CAWG_data.jpg").read_bytes(), "image/png")
    assert sig.status == SignalStatus.RESERVED


def _store(assertions: list[dict[str, Any]]) -> str:
    return json.dumps({"active_manifest": "m", "manifests": {"m": {"assertions": assertions}}})


def test_constrained_reserves_and_versioned_labels_count() -> None:
    store = _store(
        [
            {
                "label": "c2pa.training-mining.v2",
                "data": {
                    "entries": {"c2pa.data_mining": {"use": "constrained", "constraint_info": "x"}}
                },
            }
        ]
    )
    sig = manifest_signal(store, "Valid")
    assert sig.status == SignalStatus.RESERVED
    assert sig.extra["training_mining"] == {"c2pa.data_mining": "constrained"}


def test_unrecognised_use_is_unknown() -> None:
    store = _store(
        [
            {
                "label": "cawg.training-mining",
                "data": {"entries": {"cawg.ai_inference": {"use": "maybe"}}},
            }
        ]
    )
    assert manifest_signal(store, "Valid").status == SignalStatus.UNKNOWN


def test_only_the_active_manifest_counts() -> None:
    store = json.dumps(
        {
            "active_manifest": "new",
            "manifests": {
                "old": {
                    "assertions": [
                        {
                            "label": "c2pa.training-mining",
                            "data": {"entries": {"a": {"use": "notAllowed"}}},
                        }
                    ]
                },
                "new": {"assertions": [{"label": "c2pa.actions.v2", "data": {}}]},
            },
        }
    )
    sig = manifest_signal(store, "Valid")
    assert sig.status == SignalStatus.ALLOWED
    assert sig.extra["training_mining"] == {}


def test_generated_images_have_no_manifest() -> None:
    for fmt, mime in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        data = image_bytes(3, (64, 48), fmt)
        assert sniff_mime(data) == mime
        sig = c2pa_signal(data, None)
        assert (sig.status, sig.extra["present"]) == (SignalStatus.ALLOWED, False)


def test_unsupported_format_is_not_checked() -> None:
    data = image_bytes(3, (16, 16), "BMP")
    sig = c2pa_signal(data, "image/bmp")
    assert sig.status == SignalStatus.UNKNOWN
    assert "not supported" in sig.detail


def test_truncated_jpeg_is_unknown_not_allowed(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "c2pa/C.jpg").read_bytes()[:5000]
    assert c2pa_signal(data, "image/jpeg").status == SignalStatus.UNKNOWN


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.sampled_from(
        [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]
    ),
    body=st.binary(max_size=400),
    mime=st.none() | st.sampled_from(["image/jpeg", "image/png", "text/html", ""]),
)
def test_never_raises(prefix: bytes, body: bytes, mime: str | None) -> None:
    sig = c2pa_signal(prefix + body, mime)
    assert sig.kind == SignalKind.C2PA
    assert isinstance(sig.extra["present"], bool)
    assert sig.status in (SignalStatus.ALLOWED, SignalStatus.UNKNOWN)


def test_remote_manifest_reference_is_unknown_and_not_fetched() -> None:
    # XMP `dcterms:provenance` points at a remote manifest; parsers do no I/O, so it stays unread.
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dcterms="http://purl.org/dc/terms/"'
        b' dcterms:provenance="http://127.0.0.1:9/manifest.c2pa"/></rdf:RDF></x:xmpmeta>'
    )
    buf = io.BytesIO()
    make_image(1, (32, 32)).save(buf, "JPEG", xmp=xmp)
    assert may_hold_manifest(buf.getvalue(), "image/jpeg")
    sig = c2pa_signal(buf.getvalue(), None)
    assert sig.status == SignalStatus.UNKNOWN
    assert "remote" in sig.detail.lower()


def test_precheck_sends_app11_and_cabx_to_the_reader(fixtures_dir: Path) -> None:
    plain = image_bytes(4, (32, 32), "JPEG")
    assert not may_hold_manifest(plain, "image/jpeg")
    app11 = plain[:2] + b"\xff\xeb\x00\x06jumb" + plain[2:]
    assert may_hold_manifest(app11, "image/jpeg")
    png = image_bytes(4, (8, 8), "PNG")
    assert not may_hold_manifest(png, "image/png")
    cabx = png[:33] + b"\x00\x00\x00\x00caBX\x00\x00\x00\x00" + png[33:]
    assert may_hold_manifest(cabx, "image/png")
    for name in ("c2pa/C.jpg", "c2pa/no_alg.jpg", "c2pa/testv2.jpg"):
        assert may_hold_manifest((fixtures_dir / name).read_bytes(), "image/jpeg")
