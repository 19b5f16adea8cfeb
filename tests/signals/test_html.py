"""HTML meta: robots `noai`/`noimageai`, bot-scoped robots meta, TDMRep `tdm-reservation` meta.

The TDMRep page is the example of the W3C TDMRep final report (section "TDM Metadata in HTML
Content"); the robots forms follow Google's robots meta specification.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.html import html_meta, meta_robots_signal

TOKENS = ["mybot", "CCBot"]
W3C_EXAMPLE = b"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="tdm-reservation" content="1">
    <meta name="tdm-policy" content="https://provider.com/policies/policy.json">
    <title>Document title</title>
  </head>
  <body>...</body>
</html>"""


def test_tdmrep_meta_of_the_w3c_example() -> None:
    meta = html_meta(W3C_EXAMPLE)
    assert meta["tdm-reservation"] == "1"
    assert meta["tdm-policy"] == "https://provider.com/policies/policy.json"


def test_robots_noai_meta_reserves() -> None:
    meta = html_meta('<head><META NAME="Robots" CONTENT="noai, noimageai"></head>')
    assert meta == {"robots": "noai, noimageai"}
    sig = meta_robots_signal(meta, TOKENS, "https://example.com/page")
    assert sig.kind == SignalKind.X_ROBOTS_TAG
    assert sig.status == SignalStatus.RESERVED
    assert sig.evidence == '<meta name="robots" content="noai, noimageai">'


def test_bot_scoped_meta_applies_to_that_bot_only() -> None:
    meta = html_meta(b'<meta name="CCBot" content="noai"><meta name="otherbot" content="noai">')
    sig = meta_robots_signal(meta, TOKENS, "p")
    assert sig.tokens == {"mybot": SignalStatus.ALLOWED, "ccbot": SignalStatus.RESERVED}
    assert sig.status == SignalStatus.RESERVED
    assert meta_robots_signal(meta, ["mybot"], "p").status == SignalStatus.ALLOWED


def test_noindex_meta_is_not_an_opt_out() -> None:
    sig = meta_robots_signal(
        html_meta('<meta name="robots" content="noindex,nofollow">'), TOKENS, "p"
    )
    assert sig.status == SignalStatus.ALLOWED
    assert "noindex (not an AI opt-out)" in sig.detail


def test_no_robots_meta() -> None:
    sig = meta_robots_signal(html_meta("<title>x</title>"), TOKENS, "p")
    assert (sig.status, sig.detail) == (SignalStatus.ALLOWED, "no robots meta")


def test_repeated_robots_meta_combine() -> None:
    meta = html_meta('<meta name="robots" content="noindex"><meta name="robots" content="noai">')
    assert meta["robots"] == "noindex, noai"
    assert meta_robots_signal(meta, TOKENS, "p").status == SignalStatus.RESERVED


def test_garbage_bom_and_broken_markup() -> None:
    meta = html_meta(b'\xef\xbb\xbf<meta name="robots" content="noai"><<<\xff\xfe<meta name=><meta')
    assert meta.get("robots") == "noai"
    assert html_meta(b"\x00\x01\x02<!--") == {}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_html_meta_never_raises(data: bytes | str) -> None:
    meta = html_meta(data)
    assert isinstance(meta, dict)
    assert meta_robots_signal(meta, TOKENS, "p").status in (
        SignalStatus.ALLOWED,
        SignalStatus.RESERVED,
    )
