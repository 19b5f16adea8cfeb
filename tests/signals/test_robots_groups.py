"""The line scanner (Content-Signal / Content-Usage groups) selects the same robots.txt group
for a token as protego does for Allow/Disallow.

Black-box check: every group carries a marker in both worlds - `Disallow: /m<i>/` (seen by
protego) and `Content-Signal: marker-<i>` (seen by the scanner). For each token, the markers
protego disallows must be exactly the markers on the scanner's selected group.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.signals.robots import RobotsDoc, parse_robots

AGENTS = [
    "*",
    "GPTBot",
    "gptbot",
    "CCBot",
    "Google",
    "Google-Extended",
    "google-extended",
    "bot",
    "examplebot",
    "ExampleBot/1.0",
    "claude*",
    "*bot",
    "anthropic-ai",
    "ai",
    "a b",
]
TOKENS = [
    "gptbot",
    "ccbot",
    "google-extended",
    "google",
    "examplebot",
    "claudebot",
    "anthropic-ai",
    "otherbot",
    "bot",
    "ai2bot",
    "mybot",
    "a",
]
UA_SPELLINGS = [
    "User-agent: {}",
    "user-agent:{}",
    "USER-AGENT : {}",
    "User agent {}",
    "useragent: {}",
]
NOISE = [
    "",
    "# comment",
    "Sitemap: https://example.com/s.xml",
    "Host: example.com",
    "Crawl-delay: 3",
    "Unknown-directive: x",
    "Disallow:",
    "garbage line",
    "Content-Usage: train-ai=n",
    "License: /l.xml",
    "Request-rate: 1/5",
]


def markers_protego(doc: RobotsDoc, token: str, count: int) -> set[int]:
    assert doc.parser is not None
    return {i for i in range(count) if not doc.parser.can_fetch(f"https://h.example/m{i}/x", token)}


def markers_scanner(doc: RobotsDoc, token: str) -> set[int]:
    lines = doc.lines_for(token).content_signal
    return {int(v.removeprefix("marker-")) for v in lines if v.startswith("marker-")}


def assert_agree(text: str, count: int) -> None:
    doc = parse_robots(text, "https://h.example/robots.txt")
    for token in TOKENS:
        assert markers_scanner(doc, token) == markers_protego(doc, token, count), (token, text)


items = st.one_of(
    st.tuples(st.just("ua"), st.sampled_from(UA_SPELLINGS), st.sampled_from(AGENTS)),
    st.tuples(st.just("marker"), st.just(""), st.just("")),
    st.tuples(st.just("noise"), st.sampled_from(NOISE), st.just("")),
)


def render(plan: list[tuple[str, str, str]]) -> tuple[str, int]:
    lines: list[str] = []
    count = 0
    for kind, template, agent in plan:
        if kind == "ua":
            lines.append(template.format(agent))
        elif kind == "marker":
            lines += [f"Disallow: /m{count}/", f"Content-Signal: marker-{count}"]
            count += 1
        else:
            lines.append(template)
    return "\r\n".join(lines), count


@settings(max_examples=300, deadline=None)
@given(plan=st.lists(items, max_size=25))
def test_group_selection_agrees_with_protego(plan: list[tuple[str, str, str]]) -> None:
    text, count = render(plan)
    assert_agree(text, count)


def test_fixed_files_agree() -> None:
    files = [
        # Specific group beats `*`; merged groups; a Sitemap line does not end a group.
        "User-agent: *\nDisallow: /m0/\nContent-Signal: marker-0\n\n"
        "User-agent: GPTBot\nSitemap: /s.xml\nUser-agent: CCBot\nDisallow: /m1/\n"
        "Content-Signal: marker-1\n\n"
        "User-agent: gptbot\nDisallow: /m2/\nContent-Signal: marker-2\n",
        # Longest agent name found in the token wins: "google-extended" over "google".
        "User-agent: Google\nDisallow: /m0/\nContent-Signal: marker-0\n"
        "User-agent: Google-Extended\nDisallow: /m1/\nContent-Signal: marker-1\n",
        # Lines before any user-agent apply to no group.
        "Disallow: /m0/\nContent-Signal: marker-0\nUser-agent: *\nDisallow: /m1/\n"
        "Content-Signal: marker-1\n",
    ]
    for text in files:
        assert_agree(text, 3)


def test_selected_agent_names() -> None:
    doc = parse_robots(
        "User-agent: *\nAllow: /\nUser-agent: Google\nAllow: /\n"
        "User-agent: Google-Extended\nDisallow: /\n"
    )
    assert doc.agent_for("google-extended") == "google-extended"
    # protego matches an agent name that starts at a token boundary of the token, so the
    # "Google" group also applies to "googlebot"; but not inside a word.
    assert doc.agent_for("googlebot") == "google"
    assert doc.agent_for("mygooglebot") == "*"
    assert doc.agent_for("gptbot") == "*"
    assert parse_robots("User-agent: GPTBot\nDisallow: /\n").agent_for("ccbot") is None
