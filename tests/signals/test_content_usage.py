"""IETF AI Preferences: Content-Usage header and robots.txt rules.

Sources (read at github.com/ietf-wg-aipref/drafts, tags draft-ietf-aipref-vocab-07 and
draft-ietf-aipref-attach-05):
- attach section 1.2 examples (`Content-Usage: train-ai=n` header; the robots.txt group);
- attach section 3.4 example robots.txt and its table of paths (/test, /never/test,
  /ai-ok/test) for the `*` group and ExampleBot;
- vocab section 6.4.1 "Multiple Preferences" example (`train-ai=y, train-ai, search=n,
  search="n"` -> all unknown) and the uppercase-key rule;
- vocab section 6.4.2 parameter examples (`train-ai;allow=n, train-ai=y` -> allow);
- vocab section 5.1 combining rules (any disallow, else any allow, else unknown);
- vocab-02/03/04 labels (`train-genai`, `bots`, `all`) for deployed older headers.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import Signal, SignalKind, SignalStatus
from provenance.signals.content_usage import (
    combine_content_usage,
    content_usage_from_headers,
    content_usage_from_robots,
    parse_preferences,
)
from provenance.signals.robots import parse_robots, robots_from_response

SRC = "https://example.com/robots.txt"
A, R, U = SignalStatus.ALLOWED, SignalStatus.RESERVED, SignalStatus.UNKNOWN

ATTACH_EXAMPLE = """\
User-Agent: *
Allow: /
Disallow: /never/
Content-Usage: train-ai=n
Content-Usage: /ai-ok/ train-ai=y

User-Agent: ExampleBot
Allow: /
Content-Usage: train-ai=y
"""


def header(value: str) -> Signal:
    return content_usage_from_headers([("Content-Usage", value)], "https://example.com/a.jpg")


def robots(text: str, path: str, tokens: list[str]) -> Signal:
    return content_usage_from_robots(parse_robots(text, SRC), "https://example.com" + path, tokens)


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/test", R, "train-ai=n"),
        ("/never/test", A, "no statement"),  # not crawlable: no preference applies
        ("/ai-ok/test", A, "/ai-ok/ train-ai=y"),
    ],
)
def test_attach_example_table(path: str, status: SignalStatus, detail: str) -> None:
    sig = robots(ATTACH_EXAMPLE, path, ["otherbot"])
    assert sig.kind is SignalKind.CONTENT_USAGE
    assert (sig.status, sig.detail) == (status, detail)
    assert sig.evidence == ATTACH_EXAMPLE


def test_attach_example_other_user_agent() -> None:
    sig = robots(ATTACH_EXAMPLE, "/test", ["examplebot", "otherbot"])
    assert sig.tokens == {"examplebot": A, "otherbot": R}
    assert sig.status is R
    assert sig.detail == "train-ai=n (otherbot); train-ai=y (examplebot)"


def test_attach_header_example() -> None:
    sig = header("train-ai=n")
    assert (sig.status, sig.detail) == (R, "train-ai=n")
    assert sig.evidence == "Content-Usage: train-ai=n"
    assert sig.to_json()["detail"] == "train-ai=n"


def test_vocab_multiple_preferences_example() -> None:
    sig = header('train-ai=y, train-ai, search=n, search="n"')
    assert (sig.status, sig.detail) == (A, "no statement")
    assert sig.extra["stated"] is False


def test_vocab_parameters_example() -> None:
    assert parse_preferences("train-ai;allow=n, train-ai=y") == ({"train-ai": "y"}, None)
    assert header("train-ai;allow=n, train-ai=y").status is A


def test_uppercase_keys_fail_to_parse() -> None:
    sig = header("Train-AI=n")
    assert sig.status is A
    assert sig.detail.startswith("no statement (unparseable Content-Usage")


def test_non_token_values() -> None:
    for value in ['train-ai="n"', "train-ai=N", "train-ai=no", "train-ai=1", "train-ai"]:
        assert header(value).status is A, value


def test_duplicate_keys_last_wins() -> None:
    assert header("train-ai=y, train-ai=n").status is R
    assert header("train-ai=n, train-ai=y").status is A


def test_several_header_lines_are_one_field() -> None:
    sig = content_usage_from_headers(
        [("content-usage", "search=y"), ("X-Other", "1"), ("CONTENT-USAGE", "train-ai=n")], "u"
    )
    assert sig.status is R
    assert sig.evidence == "Content-Usage: search=y\nContent-Usage: train-ai=n"


def test_no_header_is_no_statement() -> None:
    sig = content_usage_from_headers([("Content-Type", "image/jpeg")], "u")
    assert (sig.status, sig.detail, sig.evidence) == (
        A,
        "no statement (no Content-Usage header)",
        None,
    )


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("train-genai=n", R),
        ("bots=n", R),
        ("all=n", R),
        ("bots=n, train-ai=y", A),
        ("train-ai=y, train-genai=n", R),
        ("search=n", A),
        ("bots=y", A),
    ],
)
def test_earlier_draft_labels(value: str, status: SignalStatus) -> None:
    assert header(value).status is status


def test_per_path_longest_match_and_identical_paths() -> None:
    text = (
        "User-agent: *\n"
        "Content-Usage: /images/ train-ai=n\n"
        "Content-Usage: /images/free/ train-ai=y\n"
        "Content-Usage: /dup/ train-ai=y\n"
        "Content-Usage: /dup/ train-ai=n\n"
        "Content-Usage: /img/*.png$ train-ai=n\n"
    )
    assert robots(text, "/images/a.jpg", ["a"]).status is R
    assert robots(text, "/images/free/a.jpg", ["a"]).status is A
    assert robots(text, "/dup/a.jpg", ["a"]).status is R  # most restrictive on equal paths
    assert robots(text, "/img/x/y.png", ["a"]).status is R
    assert robots(text, "/img/x/y.png?v=1", ["a"]).detail == "no statement"
    assert robots(text, "/other", ["a"]).detail == "no statement"


def test_rules_for_other_user_agents_only() -> None:
    text = "User-agent: GPTBot\nContent-Usage: train-ai=n\n\nUser-agent: *\nAllow: /\n"
    sig = robots(text, "/a", ["gptbot", "ccbot"])
    assert sig.tokens == {"gptbot": R, "ccbot": A}


def test_crlf_bom_comments_tab_separator() -> None:
    body = b"\xef\xbb\xbfUser-agent: *\r\nContent-Usage:\t/p/\ttrain-ai=n # why\r\n"
    doc = robots_from_response(SRC, 200, body, None)
    assert content_usage_from_robots(doc, "https://example.com/p/x", ["a"]).status is R
    assert content_usage_from_robots(doc, "https://example.com/q", ["a"]).status is A


def test_unparseable_rule_states_nothing() -> None:
    assert robots("User-agent: *\nContent-Usage: Train-AI=n\n", "/a", ["a"]).status is A


def test_binary_garbage_and_unreachable() -> None:
    garbage = b"\x00\xff\xfe\nUser-agent: *\nContent-Usage: train-ai=n\n\x89PNG\xc3("
    doc = robots_from_response(SRC, 200, garbage, None)
    assert content_usage_from_robots(doc, "https://example.com/a", ["a"]).status is R
    down = robots_from_response(SRC, None, None, "timeout")
    assert content_usage_from_robots(down, "https://example.com/a", ["a"]).status is U
    missing = robots_from_response(SRC, 404, None, None)
    assert content_usage_from_robots(missing, "https://example.com/a", ["a"]).status is A
    assert content_usage_from_robots(doc, "http://[bad/a", ["a"]).status is U


def test_combine() -> None:
    no, yes, none = header("train-ai=n"), header("train-ai=y"), header("search=y")
    down = content_usage_from_robots(robots_from_response(SRC, 500, None, None), "u", ["a"])
    assert combine_content_usage([yes, no]).status is R
    assert combine_content_usage([none, yes]).detail == "train-ai=y"
    assert combine_content_usage([none, yes]).extra["stated"] is True
    assert combine_content_usage([none]).detail == "no statement"
    assert combine_content_usage([yes, down]).status is U
    assert combine_content_usage([no, down]).status is R
    assert combine_content_usage([]).status is U


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_header_never_raises(value: str) -> None:
    assert header(value).status in (A, R)


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=50), url=st.text(max_size=30) | st.just("http://["))
def test_robots_rule_never_raises(value: str, url: str) -> None:
    doc = parse_robots(f"User-agent: *\nContent-Usage: {value}\nContent-Usage: /{value}\n")
    assert content_usage_from_robots(doc, url, ["a", "b"]).status in set(SignalStatus)
