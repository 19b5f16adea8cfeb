"""ai.txt: the robots.txt grammar at /ai.txt, evaluated for the same tokens and image paths.

Source: the ai.txt convention (robots.txt grammar served at `/ai.txt`); the example is
modelled on the files Spawning's ai.txt generator publishes (`User-Agent: *` followed by
`Disallow:` lines for media file types such as `*.jpg`). Status handling follows RFC 9309
section 2.3.1 like robots.txt.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.aitxt import aitxt_signal
from provenance.signals.robots import parse_robots, robots_from_response

SRC = "https://example.com/ai.txt"
A, R, U = SignalStatus.ALLOWED, SignalStatus.RESERVED, SignalStatus.UNKNOWN

SPAWNING_STYLE = """\
# Spawning AI
# Prevent datasets from using the following file types
User-Agent: *
Disallow: /
Disallow: *.jpg
Disallow: *.png
Allow: *.txt
"""


def test_image_paths_disallowed_for_all_tokens() -> None:
    doc = parse_robots(SPAWNING_STYLE, SRC)
    sig = aitxt_signal(doc, "https://example.com/photos/a.jpg", ["img2dataset", "ccbot"])
    assert sig.kind is SignalKind.AI_TXT
    assert sig.status is R
    assert sig.tokens == {"img2dataset": R, "ccbot": R}
    assert sig.detail == "disallowed for img2dataset, ccbot"
    assert sig.evidence == SPAWNING_STYLE
    assert aitxt_signal(doc, "https://example.com/readme.txt", ["ccbot"]).status is A


def test_token_specific_groups() -> None:
    text = "User-agent: img2dataset\nDisallow: /images/\n\nUser-agent: *\nAllow: /\n"
    sig = aitxt_signal(
        parse_robots(text, SRC), "https://example.com/images/a.png", ["img2dataset", "gptbot"]
    )
    assert sig.tokens == {"img2dataset": R, "gptbot": A}


def test_missing_ai_txt_states_nothing() -> None:
    sig = aitxt_signal(
        robots_from_response(SRC, 404, b"not found", None), "https://example.com/a", ["ccbot"]
    )
    assert (sig.status, sig.detail) == (A, "no ai.txt (HTTP 404)")
    assert sig.tokens == {"ccbot": A}


def test_unreachable_is_unknown() -> None:
    for status, error in ((500, None), (None, "connection refused")):
        sig = aitxt_signal(
            robots_from_response(SRC, status, None, error), "https://example.com/a", ["ccbot"]
        )
        assert sig.status is U
        assert sig.detail.startswith("ai.txt unreachable")


def test_crlf_bom() -> None:
    body = b"\xef\xbb\xbfUser-Agent: *\r\nDisallow: *.jpg\r\n"
    doc = robots_from_response(SRC, 200, body, None)
    assert aitxt_signal(doc, "https://example.com/a.jpg", ["x"]).status is R


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=1000), url=st.text(max_size=30))
def test_never_raises(body: bytes, url: str) -> None:
    for status in (200, 404, 503, None):
        doc = robots_from_response(SRC, status, body, None)
        assert aitxt_signal(doc, url, ["x"]).status in set(SignalStatus)
