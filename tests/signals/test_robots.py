"""robots.txt: RFC 9309 conformance, HTTP status handling, hostile bodies.

Sources of the vectors:
- RFC 9309 section 5.1 "Simple Example" and 5.2 "Longest Match" (the example files and the
  verdicts the RFC states for them);
- RFC 9309 section 2.2.1 (group merging example with user agents a, e, f, h);
- RFC 9309 section 2.2.2 (allow wins an equivalent disallow; percent-encoding table);
- RFC 9309 section 2.2.3 (`$` and `*`, comments);
- RFC 9309 section 2.3.1.3/2.3.1.4 (4xx unavailable -> allowed; 5xx unreachable);
- RFC 9309 section 2.5 (500 KiB parsing limit).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.robots import (
    MAX_ROBOTS_BYTES,
    crawl_delay,
    parse_robots,
    robots_from_response,
    robots_signal,
)

SRC = "https://example.com/robots.txt"

# RFC 9309 section 5.1.
RFC_SIMPLE = """\
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
"""


def verdict(text: str, path: str, token: str) -> SignalStatus:
    doc = parse_robots(text, SRC)
    return robots_signal(doc, "https://example.com" + path, [token]).tokens[token]


A, R = SignalStatus.ALLOWED, SignalStatus.RESERVED


@pytest.mark.parametrize(
    ("token", "path", "expected"),
    [
        # The `*` group: *.gif$ and /example/ disallowed, /publications/ allowed.
        ("otherbot", "/example/x.html", R),
        ("otherbot", "/image.gif", R),
        ("otherbot", "/image.gif?x=1", A),  # `$` anchors the end
        ("otherbot", "/publications/a.html", A),
        ("otherbot", "/", A),
        # foobot: everything disallowed except the two allowed files.
        ("foobot", "/", R),
        ("foobot", "/example/page.html", A),
        ("foobot", "/example/allowed.gif", A),
        ("foobot", "/example/other.gif", R),
        # barbot and bazbot share one group.
        ("barbot", "/example/page.html", R),
        ("bazbot", "/example/page.html", R),
        ("bazbot", "/example/other.html", A),
        # quxbot: an empty group allows everything, even what `*` disallows.
        ("quxbot", "/example/page.html", A),
        ("quxbot", "/image.gif", A),
        # User-agent matching is case-insensitive.
        ("FooBot", "/", R),
    ],
)
def test_rfc9309_simple_example(token: str, path: str, expected: SignalStatus) -> None:
    assert verdict(RFC_SIMPLE, path, token.lower()) is expected


def test_rfc9309_longest_match() -> None:
    text = "User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n"
    assert verdict(text, "/example/page/", "foobot") is A
    assert verdict(text, "/example/page/disallowed.gif", "foobot") is R


def test_rfc9309_allow_wins_equivalent_disallow() -> None:
    text = "User-agent: *\nDisallow: /dir/\nAllow: /dir/\n"
    assert verdict(text, "/dir/x", "anybot") is A


def test_rfc9309_group_merging_example() -> None:
    text = (
        "user-agent: a\ndisallow: /c\n\nuser-agent: a\ndisallow: /d\n\n"
        "user-agent: e\nuser-agent: f\ndisallow: /g\n\nuser-agent: h\n"
    )
    assert verdict(text, "/c", "a") is R
    assert verdict(text, "/d", "a") is R
    assert verdict(text, "/g", "e") is R
    assert verdict(text, "/g", "f") is R
    assert verdict(text, "/c", "h") is A


def test_rfc9309_special_characters_and_comments() -> None:
    text = (
        "User-agent: * # comment in line\n"
        "# comment at the end\n"
        "Disallow: /this/path/exactly$\n"
        "Disallow: /this/*/deep\n"
    )
    assert verdict(text, "/this/path/exactly", "x") is R
    assert verdict(text, "/this/path/exactly/more", "x") is A
    assert verdict(text, "/this/a/b/deep", "x") is R


def test_rfc9309_percent_encoding() -> None:
    text = "User-agent: *\nDisallow: /foo/bar/ツ\nDisallow: /a/%62%61%7A\n"
    assert verdict(text, "/foo/bar/%E3%83%84", "x") is R
    assert verdict(text, "/a/baz", "x") is R


def test_signal_shape_and_worst_status() -> None:
    doc = parse_robots(RFC_SIMPLE, SRC)
    sig = robots_signal(
        doc, "https://example.com/example/page.html", ["foobot", "barbot", "quxbot"]
    )
    assert sig.kind is SignalKind.ROBOTS
    assert sig.status is R
    assert sig.tokens == {"foobot": A, "barbot": R, "quxbot": A}
    assert sig.detail == "disallowed for barbot"
    assert sig.source == SRC
    assert sig.evidence == RFC_SIMPLE


def test_tokens_are_lowered_and_deduplicated_in_order() -> None:
    doc = parse_robots(RFC_SIMPLE, SRC)
    sig = robots_signal(doc, "https://example.com/", ["QuxBot", "foobot", "FOOBOT", "quxbot"])
    assert list(sig.tokens) == ["quxbot", "foobot"]
    assert sig.tokens == {"quxbot": A, "foobot": R}


def test_no_tokens_is_unknown() -> None:
    sig = robots_signal(parse_robots(RFC_SIMPLE, SRC), "https://example.com/", [])
    assert sig.status is SignalStatus.UNKNOWN


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 429, 451])
def test_4xx_is_unavailable_allow_all(status: int) -> None:
    doc = robots_from_response(SRC, status, b"User-agent: *\nDisallow: /\n", None)
    assert doc.state == "allow-all"
    sig = robots_signal(doc, "https://example.com/x", ["gptbot"])
    assert sig.status is A
    assert sig.tokens == {"gptbot": A}
    assert str(status) in sig.detail
    assert sig.evidence == f"HTTP {status}"


@pytest.mark.parametrize(
    ("status", "error"), [(500, None), (503, None), (None, "timeout"), (None, None), (302, None)]
)
def test_5xx_and_no_response_are_unknown(status: int | None, error: str | None) -> None:
    doc = robots_from_response(SRC, status, None, error)
    assert doc.state == "unreachable"
    sig = robots_signal(doc, "https://example.com/x", ["gptbot", "ccbot"])
    assert sig.status is SignalStatus.UNKNOWN
    assert set(sig.tokens.values()) == {SignalStatus.UNKNOWN}
    assert "unreachable" in sig.detail
    if error:
        assert error in sig.detail


def test_2xx_parses_body() -> None:
    doc = robots_from_response(SRC, 200, b"User-agent: GPTBot\nDisallow: /\n", None)
    assert doc.state == "parsed" and doc.http_status == 200
    assert robots_signal(doc, "https://example.com/a", ["gptbot"]).status is R


def test_bom_crlf_and_cr_only() -> None:
    body = b"\xef\xbb\xbfUser-agent: GPTBot\r\nDisallow: /private\r\n"
    doc = robots_from_response(SRC, 200, body, None)
    assert not doc.text.startswith("\ufeff")
    assert robots_signal(doc, "https://example.com/private/a", ["gptbot"]).status is R
    cr_only = parse_robots(b"User-agent: *\rDisallow: /x\r", SRC)
    assert robots_signal(cr_only, "https://example.com/x", ["a"]).status is R
    str_bom = parse_robots("\ufeffUser-agent: *\nDisallow: /y\n", SRC)
    assert robots_signal(str_bom, "https://example.com/y", ["a"]).status is R


def test_binary_garbage_keeps_what_parses() -> None:
    body = b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\nUser-agent: *\nDisallow: /secret\n\xc3\x28\n"
    doc = robots_from_response(SRC, 200, body, None)
    assert doc.state == "parsed"
    assert robots_signal(doc, "https://example.com/secret", ["a"]).status is R
    assert robots_signal(doc, "https://example.com/open", ["a"]).status is A


def test_oversize_body_is_capped_and_cut_at_a_line() -> None:
    head = b"User-agent: *\nDisallow: /early\n"
    filler = b"# " + b"x" * 1000 + b"\n"
    body = head + filler * (MAX_ROBOTS_BYTES // len(filler) + 10) + b"Disallow: /late\n"
    doc = robots_from_response(SRC, 200, body, None)
    assert doc.truncated
    assert len(doc.text.encode()) <= MAX_ROBOTS_BYTES
    assert doc.text.endswith("\n")
    assert robots_signal(doc, "https://example.com/early", ["a"]).status is R
    assert robots_signal(doc, "https://example.com/late", ["a"]).status is A


def test_crawl_delay() -> None:
    doc = parse_robots("User-agent: slowbot\nCrawl-delay: 2.5\n\nUser-agent: *\nDisallow:\n")
    assert crawl_delay(doc, "SlowBot") == 2.5
    assert crawl_delay(doc, "otherbot") is None
    assert crawl_delay(robots_from_response(SRC, 500, None, None), "slowbot") is None


def test_specific_group_overrides_star() -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: GPTBot\nAllow: /\n"
    sig = robots_signal(parse_robots(text, SRC), "https://example.com/a", ["gptbot", "ccbot"])
    assert sig.tokens == {"gptbot": A, "ccbot": R}


def test_license_lines_are_collected_site_wide() -> None:
    text = "License: https://example.com/license.xml\nUser-agent: *\nLicense: /l2.xml\nAllow: /\n"
    assert parse_robots(text, SRC).licenses == ("https://example.com/license.xml", "/l2.xml")


URLS = st.text(max_size=60) | st.sampled_from(
    ["http://[", "https://[::1/x", "//[a", "http://a:99999999/x", "", "?", "#frag", "/robots.txt"]
)


def test_unreadable_url_is_unknown() -> None:
    sig = robots_signal(parse_robots(RFC_SIMPLE, SRC), "http://[broken/x", ["foobot"])
    assert sig.status is SignalStatus.UNKNOWN
    assert sig.detail == "unreadable URL"


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=2000), url=URLS, token=st.text(max_size=20))
def test_never_raises_on_bytes(body: bytes, url: str, token: str) -> None:
    for status in (200, 404, 500, None):
        doc = robots_from_response(SRC, status, body, None)
        sig = robots_signal(doc, url, [token])
        assert sig.status in set(SignalStatus)
        crawl_delay(doc, token)


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            [
                "User-agent: *",
                "User-agent: a*b",
                "Disallow: /",
                "Allow: /$",
                "Disallow: *",
                "Crawl-delay: x",
                "Crawl-delay: 1e400",
                "Request-rate: 1/0",
                "Visit-time: 99-",
                "Sitemap:",
                ":",
                "#",
                "\x00",
                "Disallow: %zz",
                "Allow: /%",
                "user agent x",
            ]
        )
        | st.text(max_size=30),
        max_size=20,
    ).map("\n".join),
    url=URLS,
)
def test_never_raises_on_text(text: str, url: str) -> None:
    doc = parse_robots(text, SRC)
    assert robots_signal(doc, url, ["x", "y"]).status in set(SignalStatus)
    crawl_delay(doc, "x")
