"""TDMRep conformance.

Source of the vectors: W3C TDM Reservation Protocol (TDMRep), Community Group final report of
10 May 2024 (https://www.w3.org/community/reports/tdmrep/CG-FINAL-tdmrep-20240510/), sections
"TDM File on the Origin Server" (both tdmrep.json examples, first-match rule, robots-style `*`
and `$`, `%24` for a literal `$`), "TDM Header Field in HTTP Responses" (both header examples),
"TDM Metadata in HTML Content" and "Processing priority" (headers supersede the file, HTML meta
supersedes both); "tdm-reservation" (values other than 0/1 are unset).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.tdmrep import (
    MAX_TDMREP_BYTES,
    TdmRepDoc,
    location_matches,
    parse_tdmrep,
    tdmrep_from_response,
    tdmrep_signal,
)

WK = "https://provider.com/.well-known/tdmrep.json"
EXAMPLE_ALL = b'[\n  {\n  "location": "/",\n  "tdm-reservation": 1\n  }\n]'
EXAMPLE_GROUPS = b"""[
  {"location": "/directory-a/", "tdm-reservation": 1},
  {"location": "/directory-b/html/", "tdm-reservation": 1,
   "tdm-policy":"https://provider.com/policies/policy.json"},
  {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0}
]"""


def doc(body: bytes) -> TdmRepDoc:
    return tdmrep_from_response(WK, 200, body, None)


def test_example_opt_out_everything() -> None:
    sig = tdmrep_signal(doc(EXAMPLE_ALL), [], "https://provider.com/any/thing.png")
    assert sig.kind == SignalKind.TDMREP
    assert sig.status == SignalStatus.RESERVED
    assert sig.extra == {"reservation": 1, "policy": None}
    assert sig.source == WK
    assert sig.evidence is not None and '"tdm-reservation": 1' in sig.evidence


@pytest.mark.parametrize(
    ("path", "status", "reservation", "policy"),
    [
        ("/directory-a/report.pdf", SignalStatus.RESERVED, 1, None),
        (
            "/directory-b/html/index.html",
            SignalStatus.RESERVED,
            1,
            "https://provider.com/policies/policy.json",
        ),
        ("/directory-b/images/cat.jpg", SignalStatus.ALLOWED, 0, None),
        ("/directory-b/images/sub/dog.jpg", SignalStatus.ALLOWED, 0, None),
        ("/directory-b/images/cat.png", SignalStatus.ALLOWED, None, None),  # no rule: unset
        ("/elsewhere.jpg", SignalStatus.ALLOWED, None, None),
    ],
)
def test_example_three_groups(
    path: str, status: SignalStatus, reservation: int | None, policy: str | None
) -> None:
    sig = tdmrep_signal(doc(EXAMPLE_GROUPS), [], f"https://provider.com{path}")
    assert sig.status == status
    assert sig.extra == {"reservation": reservation, "policy": policy}
    if reservation is None:
        assert sig.detail.startswith("no TDMRep statement")


def test_first_matching_rule_wins() -> None:
    body = json.dumps(
        [
            {"location": "/img/free/", "tdm-reservation": 0},
            {"location": "/img/", "tdm-reservation": 1},
        ]
    ).encode()
    assert (
        tdmrep_signal(doc(body), [], "https://p.com/img/free/a.jpg").status == SignalStatus.ALLOWED
    )
    assert (
        tdmrep_signal(doc(body), [], "https://p.com/img/other/a.jpg").status
        == SignalStatus.RESERVED
    )


def test_location_patterns() -> None:
    assert location_matches("/this/path/exactly$", "https://p.com/this/path/exactly")
    assert not location_matches("/this/path/exactly$", "https://p.com/this/path/exactly/more")
    assert location_matches("/this/*/then", "https://p.com/this/a/b/then/x")
    assert location_matches("/path/foo-%24", "https://p.com/path/foo-$")
    assert location_matches("/a/%7Euser/", "https://p.com/a/~user/x.jpg")  # unreserved decoded
    assert not location_matches("/Images/", "https://p.com/images/x.jpg")  # case-sensitive
    assert location_matches("/*.jpg$", "https://p.com/a/b.jpg")
    assert not location_matches("/*.jpg$", "https://p.com/a/b.jpg?size=2")
    assert location_matches("https://p.com/img/", "https://p.com/img/a.jpg")  # absolute location


def test_reservation_values_other_than_0_1_are_unset() -> None:
    for value in (2, "yes", True, None, 1.5, "01"):
        body = json.dumps([{"location": "/", "tdm-reservation": value}]).encode()
        sig = tdmrep_signal(doc(body), [], "https://p.com/a.jpg")
        assert sig.status == SignalStatus.ALLOWED, value
        assert sig.extra["reservation"] is None
    body = json.dumps([{"location": "/", "tdm-reservation": "1"}]).encode()
    assert tdmrep_signal(doc(body), [], "https://p.com/a.jpg").status == SignalStatus.RESERVED


def test_header_examples_of_the_report() -> None:
    sig = tdmrep_signal(None, [("tdm-reservation", "1")], "https://p.com/a.jpg")
    assert sig.status == SignalStatus.RESERVED
    assert sig.evidence == "tdm-reservation: 1"
    sig = tdmrep_signal(
        None,
        [("TDM-Reservation", " 1"), ("tdm-policy", "https://provider.com/policies/policy.json")],
        "https://p.com/a.jpg",
    )
    assert sig.extra == {"reservation": 1, "policy": "https://provider.com/policies/policy.json"}


def test_header_supersedes_file_and_meta_supersedes_header() -> None:
    url = "https://provider.com/x.jpg"
    allowed_by_header = tdmrep_signal(doc(EXAMPLE_ALL), [("tdm-reservation", "0")], url)
    assert allowed_by_header.status == SignalStatus.ALLOWED
    assert "header" in allowed_by_header.detail
    meta = {"tdm-reservation": "1", "tdm-policy": "https://p/pol"}
    by_meta = tdmrep_signal(doc(EXAMPLE_ALL), [("tdm-reservation", "0")], url, meta)
    assert by_meta.status == SignalStatus.RESERVED
    assert by_meta.extra == {"reservation": 1, "policy": "https://p/pol"}


def test_unset_header_falls_through_to_the_file() -> None:
    sig = tdmrep_signal(doc(EXAMPLE_ALL), [("tdm-reservation", "maybe")], "https://provider.com/a")
    assert sig.status == SignalStatus.RESERVED


@pytest.mark.parametrize(
    ("status", "body", "error", "state"),
    [
        (404, b"not found", None, "absent"),
        (403, b"", None, "absent"),
        (500, b"", None, "unreachable"),
        (503, None, None, "unreachable"),
        (None, None, "timed out", "unreachable"),
        (200, b"<html>soft 404</html>", None, "malformed"),
        (200, b'{"location": "/"}', None, "malformed"),
        (200, b"\xff\xfe\x00garbage", None, "malformed"),
        (200, b"", None, "malformed"),
        (200, b"[]", None, "parsed"),
    ],
)
def test_response_classification(
    status: int | None, body: bytes | None, error: str | None, state: str
) -> None:
    assert tdmrep_from_response(WK, status, body, error).state == state


def test_bom_and_crlf_are_accepted() -> None:
    parsed = doc(b"\xef\xbb\xbf" + EXAMPLE_GROUPS.replace(b"\n", b"\r\n"))
    assert parsed.state == "parsed"
    assert len(parsed.rules) == 3


def test_oversize_body_is_malformed() -> None:
    parsed = doc(b"[" + b" " * (MAX_TDMREP_BYTES + 1) + b"]")
    assert parsed.state == "malformed"
    assert "larger than" in (parsed.error or "")


def test_absent_file_is_allowed_unreadable_file_is_unknown() -> None:
    url = "https://p.com/a.jpg"
    absent = tdmrep_signal(tdmrep_from_response(WK, 404, b"", None), [], url)
    assert absent.status == SignalStatus.ALLOWED
    assert absent.detail.startswith("no TDMRep statement")
    assert absent.extra == {"reservation": None, "policy": None}
    down = tdmrep_signal(tdmrep_from_response(WK, 502, b"", None), [], url)
    assert down.status == SignalStatus.UNKNOWN
    assert down.extra == {"reservation": None, "policy": None}
    broken = tdmrep_signal(doc(b"{nope"), [], url)
    assert broken.status == SignalStatus.UNKNOWN
    assert "malformed" in broken.detail
    # ...but a header statement still decides.
    assert (
        tdmrep_signal(doc(b"{nope"), [("tdm-reservation", "1")], url).status
        == SignalStatus.RESERVED
    )


def test_file_not_checked_is_unknown() -> None:
    sig = tdmrep_signal(None, [], "https://p.com/a.jpg")
    assert sig.status == SignalStatus.UNKNOWN
    assert sig.extra == {"reservation": None, "policy": None}


def test_rules_without_location_are_skipped() -> None:
    parsed = parse_tdmrep(
        json.dumps([{"tdm-reservation": 1}, 5, {"location": "/a", "tdm-reservation": 1}])
    )
    assert [r.location for r in parsed.rules] == ["/a"]


@settings(max_examples=150, deadline=None)
@given(
    status=st.none() | st.integers(100, 599),
    body=st.none() | st.binary(max_size=300),
    headers=st.lists(
        st.tuples(st.sampled_from(["tdm-reservation", "tdm-policy", "x"]), st.text(max_size=20))
    ),
    url=st.text(max_size=60),
)
def test_never_raises(
    status: int | None, body: bytes | None, headers: list[tuple[str, str]], url: str
) -> None:
    parsed = tdmrep_from_response(WK, status, body, None)
    sig = tdmrep_signal(parsed, headers, url)
    assert set(sig.extra) == {"reservation", "policy"}
    assert sig.extra["reservation"] in (0, 1, None)


@settings(max_examples=150, deadline=None)
@given(
    rules=st.lists(
        st.fixed_dictionaries(
            {
                "location": st.text(alphabet="/ab*$%7E", max_size=30),
                "tdm-reservation": st.sampled_from([0, 1, 2, "1"]),
            }
        ),
        max_size=5,
    ),
    path=st.text(alphabet="/ab$~%", max_size=200),
)
def test_matching_never_raises_on_hostile_patterns(
    rules: list[dict[str, object]], path: str
) -> None:
    sig = tdmrep_signal(doc(json.dumps(rules).encode()), [], "https://p.com/" + path)
    assert sig.status in (SignalStatus.ALLOWED, SignalStatus.RESERVED)
