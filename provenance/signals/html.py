"""`<meta name=... content=...>` of an HTML page: robots (noai/noimageai), bot-scoped robots
meta (`<meta name="CCBot" content="noai">`) and the TDMRep `tdm-reservation` / `tdm-policy`.

Parsed with the standard library's tolerant `html.parser`, which never raises on garbage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html.parser import HTMLParser

from provenance.domain import Signal
from provenance.signals.headers import Directive, directives_signal, parse_directives

# Pages are read only as far as needed: meta tags live in <head>.
MAX_HTML_CHARS = 2 * 1024 * 1024
_ROBOTS_NAMES = frozenset({"robots"})


class _MetaCollector(HTMLParser):
    """Collects name -> content of every <meta> tag."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {k.lower(): (v or "") for k, v in attrs}
        name = (values.get("name") or values.get("http-equiv") or "").strip().lower()
        if not name or "content" not in values:
            return
        content = values["content"].strip()
        # A repeated name adds to the earlier one, as repeated robots metas combine.
        self.meta[name] = f"{self.meta[name]}, {content}" if name in self.meta else content


def _decode(html: bytes | str) -> str:
    if isinstance(html, str):
        return html[:MAX_HTML_CHARS]
    head = html[:MAX_HTML_CHARS]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("utf-8", errors="replace")


def html_meta(html: bytes | str) -> dict[str, str]:
    """Lower-cased meta name (or http-equiv) -> content, for every `<meta>` with content.

    Repeated names are joined with ", ". Never raises: unparseable markup yields what was read.
    """
    collector = _MetaCollector()
    try:
        collector.feed(_decode(html))
        collector.close()
    except (AssertionError, ValueError):
        # html.parser can still trip on pathological declarations; keep what it collected.
        pass
    return collector.meta


def meta_directives(meta: Mapping[str, str], tokens: Sequence[str]) -> list[Directive]:
    """Robots directives of page meta: `robots` for everyone, `<token>` metas for that token."""
    wanted = {t.strip().lower() for t in tokens if t.strip()}
    found: list[Directive] = []
    for name, content in sorted(meta.items()):
        key = name.strip().lower()
        if key in _ROBOTS_NAMES:
            found.extend(parse_directives(content))
        elif key in wanted:
            found.extend(
                Directive(key, d.name) for d in parse_directives(content) if d.agent is None
            )
    return found


def meta_robots_signal(meta: Mapping[str, str], tokens: Sequence[str], source: str) -> Signal:
    """X-Robots-Tag semantics for a page's robots meta: `noai`/`noimageai` reserve.

    Kind is X_ROBOTS_TAG; no robots meta gives ALLOWED with detail "no robots meta".
    """
    wanted = {t.strip().lower() for t in tokens if t.strip()}
    seen = [
        f'<meta name="{name}" content="{content}">'
        for name, content in sorted(meta.items())
        if name.strip().lower() in _ROBOTS_NAMES | wanted
    ]
    evidence = "\n".join(seen) if seen else None
    return directives_signal(
        meta_directives(meta, tokens), tokens, source, evidence, "no robots meta"
    )
