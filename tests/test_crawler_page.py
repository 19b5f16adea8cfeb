"""`report crawler`: the crawler information page and its Atom feed (GPAI Code of Practice,
Copyright chapter, Measure 1.3(3)); one feed entry per change of settings or about file.
Atom structure per RFC 4287 (feed/id, title, updated; entry/id, title, updated)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.summary_catalog import ABOUT

ATOM = "{http://www.w3.org/2005/Atom}"


def entries(out: Path) -> list[ET.Element]:
    root = ET.parse(out / "crawler.atom").getroot()
    assert root.tag == f"{ATOM}feed"
    for tag in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{tag}") is not None
    return root.findall(f"{ATOM}entry")


def run(cli: Cli, out: Path, *args: str) -> dict[str, object]:
    return dict(json.loads(cli("report", "crawler", "--out", str(out), "--json", *args).stdout))


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.todo = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("id"):
            self.rows.append(str(a["id"]))
        if a.get("class") == "todo":
            self.todo += 1


def test_feed_gets_one_entry_per_change(cli: Cli, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "crawler"
    about = tmp_path / "about.toml"
    about.write_text(ABOUT)
    monkeypatch.setenv("PROVENANCE_USER_AGENT", "examplebot/1.0 (+https://example.com/bot)")
    first = run(cli, out, "--about", str(about))
    assert first["changed"] == ["Crawler information published."]
    assert len(entries(out)) == 1
    assert run(cli, out, "--about", str(about))["changed"] == []
    assert len(entries(out)) == 1

    about.write_text(ABOUT.replace('purposes = ["training ExampleVision"]',
                                   'purposes = ["training ExampleVision 2"]'))
    changed = run(cli, out, "--about", str(about))["changed"]
    assert changed == ["Purposes: added training ExampleVision 2; removed training ExampleVision"]
    monkeypatch.setenv("PROVENANCE_USER_AGENT", "otherbot/2.0")
    changed = run(cli, out, "--about", str(about))["changed"]
    assert "User-Agent string: examplebot/1.0 (+https://example.com/bot) -> otherbot/2.0" in changed
    assert "robots.txt product token: examplebot -> otherbot" in changed
    feed = entries(out)
    assert len(feed) == 3
    newest = feed[0]
    assert newest.findtext(f"{ATOM}title") == f"{len(changed)} changes to the crawler"
    assert "otherbot/2.0" in (newest.findtext(f"{ATOM}content") or "")
    assert len({e.findtext(f"{ATOM}id") for e in feed}) == 3


def test_page_lists_tokens_protocols_and_open_fields(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "crawler"
    result = run(cli, out)
    state = result["state"]
    assert isinstance(state, dict) and state["token"] == "provenance-bot"
    assert "gptbot" in state["tokens_honoured"]
    parser = _Rows()
    page = (out / "crawler.html").read_text()
    parser.feed(page)
    assert parser.rows == ["name", "user_agent", "token", "tokens_honoured", "purposes",
                           "robots_features", "protocols", "contact"]
    assert parser.todo == 2  # purposes and contact: no about file given
    assert "RFC 9309" in page and "TDMRep" in page and 'href="crawler.atom"' in page


def test_unreadable_state_file_exits_2(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "crawler"
    out.mkdir()
    (out / "crawler-state.json").write_text("{not json")
    result = cli("report", "crawler", "--out", str(out), expect=2)
    assert "crawler-state.json is unreadable" in result.stderr
