"""Content Signals in robots.txt.

Sources: contentsignals.org (CC0) - the example robots.txt it publishes (quoted in
google/robotstxt issue 80: `User-Agent: *` / `Content-Signal: ai-train=no, search=yes,
ai-input=yes` / `Allow: /`) and its rules: keys search, ai-input, ai-train; yes/no; an absent
key states nothing.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.content_signal import content_signal, parse_content_signal
from provenance.signals.robots import MAX_ROBOTS_BYTES, parse_robots, robots_from_response

SRC = "https://example.com/robots.txt"
URL = "https://example.com/img/a.jpg"
A, R, U = SignalStatus.ALLOWED, SignalStatus.RESERVED, SignalStatus.UNKNOWN

# contentsignals.org example (comment block shortened).
CONTENTSIGNALS_ORG = """\
# As a condition of accessing this website, you agree to abide by
# the following content signals:
# ai-train: training or fine-tuning AI models.
User-Agent: *
Content-Signal: ai-train=no, search=yes, ai-input=yes
Allow: /
"""


def check(text: str, tokens: list[str]) -> tuple[SignalStatus, str, dict[str, SignalStatus]]:
    sig = content_signal(parse_robots(text, SRC), URL, tokens)
    assert sig.kind is SignalKind.CONTENT_SIGNAL
    return sig.status, sig.detail, dict(sig.tokens)


def test_contentsignals_org_example() -> None:
    sig = content_signal(parse_robots(CONTENTSIGNALS_ORG, SRC), URL, ["gptbot", "ccbot"])
    assert sig.status is R
    assert sig.detail == "ai-input=yes, ai-train=no, search=yes"
    assert sig.tokens == {"gptbot": R, "ccbot": R}
    assert sig.evidence == CONTENTSIGNALS_ORG
    assert sig.source == SRC
    assert sig.to_json()["detail"] == "ai-input=yes, ai-train=no, search=yes"


def test_cloudflare_managed_robots_default() -> None:
    # Cloudflare's announced default for managed robots.txt (Content Signals Policy).
    text = "User-Agent: *\nContent-Signal: search=yes, ai-train=no\nAllow: /\n"
    assert check(text, ["ccbot"])[:2] == (R, "ai-train=no, search=yes")


def test_memo_is_per_token_list() -> None:
    doc = parse_robots(
        "User-agent: *\nAllow: /\n\nUser-agent: GPTBot\nContent-Signal: ai-train=no\n"
    )
    assert content_signal(doc, URL, ["ccbot"]).status is A
    assert content_signal(doc, URL, ["ccbot", "gptbot"]).status is R
    assert content_signal(doc, URL, ["ccbot"]).tokens == {"ccbot": A}


def test_ai_train_yes_allows() -> None:
    assert check("User-agent: *\nContent-Signal: ai-train=yes\n", ["a"])[:2] == (A, "ai-train=yes")


def test_absent_key_states_nothing() -> None:
    assert check("User-agent: *\nContent-Signal: search=yes\n", ["a"])[0] is A
    status, detail, _ = check("User-agent: *\nDisallow: /x\n", ["a"])
    assert (status, detail) == (A, "no statement")


def test_rules_for_other_user_agents() -> None:
    text = (
        "User-agent: *\nContent-Signal: ai-train=yes\n\n"
        "User-agent: GPTBot\nContent-Signal: ai-train=no\n"
    )
    status, detail, tokens = check(text, ["gptbot", "ccbot"])
    assert status is R
    assert tokens == {"gptbot": R, "ccbot": A}
    assert detail == "ai-train=no (gptbot); ai-train=yes (ccbot)"


def test_group_without_signal_does_not_fall_back_to_star() -> None:
    # RFC 9309 selects one group per crawler; GPTBot's group states nothing.
    text = "User-agent: *\nContent-Signal: ai-train=no\n\nUser-agent: GPTBot\nAllow: /\n"
    assert check(text, ["gptbot"])[2] == {"gptbot": A}


def test_uppercase_keys_values_and_directive() -> None:
    assert check("User-agent: *\nCONTENT-SIGNAL: AI-Train=NO\n", ["a"])[0] is R


def test_duplicate_keys_most_restrictive() -> None:
    assert check("User-agent: *\nContent-Signal: ai-train=yes, ai-train=no\n", ["a"])[0] is R
    two_lines = "User-agent: *\nContent-Signal: ai-train=no\nContent-Signal: ai-train=yes\n"
    assert check(two_lines, ["a"])[0] is R


def test_non_token_values_state_nothing() -> None:
    for value in ['ai-train="no"', "ai-train=maybe", "ai-train", "ai-train=", "=no", "ai-train=n"]:
        status, detail, _ = check(f"User-agent: *\nContent-Signal: {value}\n", ["a"])
        assert (status, detail) == (A, "no statement"), value


def test_crlf_bom_and_comments() -> None:
    body = b"\xef\xbb\xbfUser-agent: *\r\nContent-Signal: ai-train=no # not for training\r\n"
    sig = content_signal(robots_from_response(SRC, 200, body, None), URL, ["a"])
    assert sig.status is R
    assert sig.detail == "ai-train=no"


def test_unreachable_unknown_and_missing_allowed() -> None:
    down = content_signal(robots_from_response(SRC, 503, None, None), URL, ["a"])
    assert down.status is U and down.tokens == {"a": U}
    missing = content_signal(robots_from_response(SRC, 404, None, None), URL, ["a"])
    assert (missing.status, missing.detail) == (A, "no statement")


def test_oversize_and_binary_garbage() -> None:
    head = b"User-agent: *\nContent-Signal: ai-train=no\n"
    body = head + (b"#" * 200 + b"\n") * (MAX_ROBOTS_BYTES // 200)
    assert content_signal(robots_from_response(SRC, 200, body, None), URL, ["a"]).status is R
    garbage = b"\x00\xff\x89PNG\r\n\x1a\nUser-agent: *\nContent-Signal: ai-train=no\n\xc3("
    assert content_signal(robots_from_response(SRC, 200, garbage, None), URL, ["a"]).status is R


def test_parse_content_signal_merges_lines() -> None:
    assert parse_content_signal(["search=yes", "ai-input=no, junk"]) == {
        "search": "yes",
        "ai-input": "no",
    }


def test_no_tokens_is_unknown() -> None:
    assert check(CONTENTSIGNALS_ORG, [])[0] is U


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=1500), tokens=st.lists(st.text(max_size=12), max_size=4))
def test_never_raises(body: bytes, tokens: list[str]) -> None:
    for status in (200, 404, 500):
        sig = content_signal(robots_from_response(SRC, status, body, None), URL, tokens)
        assert sig.status in set(SignalStatus)


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=60))
def test_never_raises_on_values(value: str) -> None:
    sig = content_signal(parse_robots(f"User-agent: *\nContent-Signal: {value}\n"), URL, ["a"])
    assert sig.status in (A, R)
