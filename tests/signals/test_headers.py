"""X-Robots-Tag as an AI-training signal.

Grammar cases follow Google Search Central's "Robots meta tag, data-nosnippet, and X-Robots-Tag
specifications" (repeated headers, `googlebot: ...` scoping, `unavailable_after: <date>`); the
`noai` / `noimageai` values are the DeviantArt/Spawning convention. FIELD-NOTES.md lists the
cases other tools get wrong (`NOAI` in capitals, `otherbot: noai`, `mybot: noindex, noai`).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import Signal, SignalKind, SignalStatus
from provenance.signals.headers import parse_directives, x_robots_tag_signal

TOKENS = ["mybot", "CCBot"]
SRC = "https://example.com/a.jpg"


def xrt(*values: str, tokens: list[str] = TOKENS) -> Signal:
    return x_robots_tag_signal([("X-Robots-Tag", v) for v in values], tokens, SRC)


def test_no_header_is_allowed_and_says_so() -> None:
    sig = x_robots_tag_signal([("Content-Type", "image/jpeg")], TOKENS, SRC)
    assert sig.kind == SignalKind.X_ROBOTS_TAG
    assert sig.status == SignalStatus.ALLOWED
    assert sig.detail == "no X-Robots-Tag"
    assert sig.evidence is None
    assert sig.source == SRC


def test_noai_reserves_for_every_token() -> None:
    sig = x_robots_tag_signal([("X-Robots-Tag", "noai")], TOKENS, SRC)
    assert sig.status == SignalStatus.RESERVED
    assert sig.tokens == {"mybot": SignalStatus.RESERVED, "ccbot": SignalStatus.RESERVED}
    assert sig.evidence == "X-Robots-Tag: noai"
    assert "noai" in sig.detail


def test_noimageai_reserves() -> None:
    assert xrt("noimageai").status == SignalStatus.RESERVED


def test_capitals_in_name_and_value() -> None:
    sig = x_robots_tag_signal([("X-ROBOTS-TAG", "NOAI")], TOKENS, SRC)
    assert sig.status == SignalStatus.RESERVED


def test_comma_list_and_repeated_headers() -> None:
    sig = x_robots_tag_signal(
        [("X-Robots-Tag", "noindex, nofollow"), ("x-robots-tag", "noarchive,  NoImageAI ")],
        TOKENS,
        SRC,
    )
    assert sig.status == SignalStatus.RESERVED
    assert sig.evidence == "X-Robots-Tag: noindex, nofollow\nX-Robots-Tag: noarchive,  NoImageAI "


def test_noindex_alone_is_not_an_ai_opt_out() -> None:
    for value in ("noindex", "none", "nofollow", "noindex, nofollow, noimageindex"):
        sig = xrt(value)
        assert sig.status == SignalStatus.ALLOWED, value
        assert "not an AI opt-out" in sig.detail


def test_other_bot_scope_does_not_apply_to_us() -> None:
    sig = x_robots_tag_signal([("X-Robots-Tag", "otherbot: noai")], TOKENS, SRC)
    assert sig.status == SignalStatus.ALLOWED
    assert sig.tokens == {"mybot": SignalStatus.ALLOWED, "ccbot": SignalStatus.ALLOWED}
    assert "otherbot: noai (other agent)" in sig.detail


def test_scope_for_our_token_reserves_only_that_token() -> None:
    sig = x_robots_tag_signal([("X-Robots-Tag", "ccbot: noai")], TOKENS, SRC)
    assert sig.status == SignalStatus.RESERVED
    assert sig.tokens == {"mybot": SignalStatus.ALLOWED, "ccbot": SignalStatus.RESERVED}


def test_googlebot_scope_covers_every_directive_after_it() -> None:
    # `googlebot: noindex, noai` scopes both directives to googlebot: nothing for mybot.
    sig = xrt("googlebot: noindex, noai")
    assert sig.status == SignalStatus.ALLOWED
    as_google = x_robots_tag_signal(
        [("X-Robots-Tag", "googlebot: noindex, noai")], ["Googlebot"], SRC
    )
    assert as_google.status == SignalStatus.RESERVED
    assert as_google.tokens == {"googlebot": SignalStatus.RESERVED}


def test_scope_resets_with_each_header_line() -> None:
    sig = x_robots_tag_signal(
        [("X-Robots-Tag", "otherbot: noindex"), ("X-Robots-Tag", "noai")], TOKENS, SRC
    )
    assert sig.status == SignalStatus.RESERVED


def test_unscoped_and_scoped_in_one_value() -> None:
    sig = xrt("noindex, mybot: noai")
    assert sig.tokens == {"mybot": SignalStatus.RESERVED, "ccbot": SignalStatus.ALLOWED}


def test_unavailable_after_is_a_directive_not_a_user_agent() -> None:
    directives = parse_directives("unavailable_after: 2030-01-01, noai")
    assert [(d.agent, d.name) for d in directives] == [(None, "unavailable_after"), (None, "noai")]
    assert xrt("unavailable_after: 25 Jun 2030 15:00:00 PST, noai").status == SignalStatus.RESERVED


def test_without_tokens_only_unscoped_directives_count() -> None:
    assert xrt("noai", tokens=[]).status == SignalStatus.RESERVED
    assert xrt("mybot: noai", tokens=[]).status == SignalStatus.ALLOWED


def test_empty_header_value() -> None:
    sig = xrt("  ")
    assert sig.status == SignalStatus.ALLOWED
    assert sig.detail == "X-Robots-Tag without directives"


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(
        st.tuples(st.sampled_from(["X-Robots-Tag", "x-robots-tag", "Other"]) | st.text(), st.text())
    ),
    tokens=st.lists(st.text(max_size=12), max_size=4),
)
def test_never_raises_and_is_tri_state(headers: list[tuple[str, str]], tokens: list[str]) -> None:
    sig = x_robots_tag_signal(headers, tokens, SRC)
    assert sig.status in (SignalStatus.ALLOWED, SignalStatus.RESERVED)
    if not any(word in v.lower() for _, v in headers for word in ("noai", "noimageai")):
        assert sig.status == SignalStatus.ALLOWED
