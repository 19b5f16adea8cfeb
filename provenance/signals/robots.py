"""robots.txt (RFC 9309) as a pure parser: response -> RobotsDoc -> per-token Signal.

Allow/Disallow verdicts come from protego (longest match wins, allow wins ties, `*` fallback,
case-insensitive agent matching). protego does not expose the AI-preference lines that live
in the same groups (Content-Signal, Content-Usage) nor the site-wide RSL `License:` line, so a
small scanner here reads them, building groups exactly the way protego does and selecting the
group for a token with protego's scoring, so every signal of one file agrees on "which group
applies to this crawler".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from protego import Protego

from provenance.domain import Signal, SignalKind, SignalStatus, worst_status

# RFC 9309 section 2.5: crawlers parse at least the first 500 KiB.
MAX_ROBOTS_BYTES = 500 * 1024

RobotsState = Literal["parsed", "allow-all", "unreachable"]

_UTF8_BOM = b"\xef\xbb\xbf"

# Directive spellings protego accepts; needed to mirror its record-group boundaries.
_USER_AGENT = frozenset({"user-agent", "useragent", "user agent"})
_SITE_WIDE = frozenset({"sitemap", "sitemaps", "site-map", "host"})
_KNOWN = (
    _USER_AGENT
    | _SITE_WIDE
    | frozenset(
        {
            "disallow",
            "dissallow",
            "dissalow",
            "disalow",
            "diasllow",
            "disallaw",
            "allow",
            "crawl-delay",
            "crawl delay",
            "request-rate",
            "request rate",
            "visit-time",
            "visit time",
        }
    )
)
# protego also reads colon-less lines whose first one or two words name a directive
# ("user agent foo", "crawl delay 5"); two is the longest spelling above.
_MAX_DIRECTIVE_WORDS = 2
CONTENT_SIGNAL = "content-signal"
CONTENT_USAGE = "content-usage"
LICENSE = "license"


@dataclass(frozen=True)
class AgentLines:
    """The AI-preference lines (raw values, file order) of every group naming one agent."""

    content_signal: tuple[str, ...] = ()
    content_usage: tuple[str, ...] = ()


_NO_LINES = AgentLines()


@dataclass(frozen=True)
class RobotsDoc:
    """One robots.txt-grammar file (robots.txt or ai.txt) as read, ready for URL verdicts.

    `state`: `parsed` (2xx), `allow-all` (4xx: RFC 9309 "unavailable", nothing reserved) or
    `unreachable` (5xx, no response: unknown; a crawler treats the host as disallowed).
    `text` is the decoded body that was parsed (capped at 500 KiB, BOM removed).
    """

    state: RobotsState
    text: str
    http_status: int | None
    error: str | None
    source: str
    truncated: bool = False
    licenses: tuple[str, ...] = ()
    agents: Mapping[str, AgentLines] = field(default_factory=dict, compare=False, repr=False)
    parser: Protego | None = field(default=None, compare=False, repr=False)
    _selected: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    # Per-document memo for derived, URL-independent results (e.g. compiled Content-Usage
    # rules per group); keyed by the deriving module. Pure: a function of the document.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def agent_for(self, token: str) -> str | None:
        """The group (agent name as written, lower-cased) that applies to `token`, or None.

        Mirrors protego's selection: the longest agent name found in the token at a token
        boundary wins, `*` scores lowest, the first of equal scores wins.
        """
        if token in self._selected:
            return self._selected[token]
        chosen = _select_agent(self.agents, token)
        self._selected[token] = chosen
        return chosen

    def lines_for(self, token: str) -> AgentLines:
        """The Content-Signal / Content-Usage lines of the group that applies to `token`."""
        agent = self.agent_for(token)
        return self.agents.get(agent, _NO_LINES) if agent is not None else _NO_LINES

    def evidence(self) -> str:
        """What a signal derived from this document quotes as its evidence."""
        if self.state == "parsed":
            return self.text
        if self.state == "allow-all":
            return f"HTTP {self.http_status}"
        status = f"HTTP {self.http_status}" if self.http_status is not None else "no response"
        return f"{status}: {self.error}" if self.error else status


def _agent_score(agent: str, token: str) -> int:
    if agent == "*":
        return 1
    index = token.find(agent)
    while index != -1:
        if index == 0 or not (token[index - 1].isalnum() or token[index - 1] in "-_"):
            return len(agent)
        index = token.find(agent, index + 1)
    return 0


def _select_agent(agents: Mapping[str, AgentLines], token: str) -> str | None:
    best, best_score = None, 0
    query = token.strip().lower()
    for agent in agents:
        score = _agent_score(agent, query)
        if score > best_score:
            best, best_score = agent, score
    return best


def _extract_directive(line: str) -> tuple[str, str] | None:
    """Split a comment-free line into (lower-case field, value) the way protego reads it."""
    field_name: str | None = None
    value = ""
    if ":" in line:
        field_name, raw_value = line.split(":", 1)
        field_name = field_name.strip().lower()
        value = raw_value.strip()
        if field_name in _KNOWN or not raw_value or raw_value[0].isspace():
            return field_name, value
    words = line.split()
    for count in range(1, _MAX_DIRECTIVE_WORDS + 1):
        candidate = " ".join(words[:count]).lower()
        if candidate in _KNOWN:
            return candidate, " ".join(words[count:])
    if field_name is None:
        return None
    return field_name, value


@dataclass
class _Scan:
    agents: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    current: list[str] = field(default_factory=list)
    previous: str | None = None
    licenses: list[str] = field(default_factory=list)

    def add_agents(self, value: str) -> None:
        name = value.strip().lower()
        names = [name]
        if name != "*" and "*" in name:
            names.append(name.replace("*", ""))
        for agent in names:
            if agent and agent not in self.current:
                self.agents.setdefault(agent, ([], []))
                self.current.append(agent)

    def line(self, directive: str, value: str) -> None:
        # A user-agent line after any other group line starts a new group.
        starts_group = self.previous is not None and self.previous not in _USER_AGENT
        if directive in _USER_AGENT and starts_group:
            self.current = []
        if directive not in _SITE_WIDE:
            self.previous = directive
        if not value:
            return
        if directive == LICENSE:
            # RSL: a site-wide pointer, read wherever it stands.
            self.licenses.append(value)
        elif directive in _USER_AGENT:
            self.add_agents(value)
        elif directive in (CONTENT_SIGNAL, CONTENT_USAGE):
            slot = 0 if directive == CONTENT_SIGNAL else 1
            for agent in self.current:
                self.agents[agent][slot].append(value)


def _scan(text: str) -> tuple[dict[str, AgentLines], tuple[str, ...]]:
    scan = _Scan()
    for raw in text.splitlines():
        hash_pos = raw.find("#")
        line = (raw[:hash_pos] if hash_pos != -1 else raw).strip()
        if not line:
            continue
        parsed = _extract_directive(line)
        if parsed is not None:
            scan.line(*parsed)
    agents = {
        name: AgentLines(content_signal=tuple(cs), content_usage=tuple(cu))
        for name, (cs, cu) in scan.agents.items()
    }
    return agents, tuple(scan.licenses)


def decode_body(body: bytes) -> tuple[str, bool]:
    """Decode a robots.txt body: cap at 500 KiB (dropping a cut-off last line), drop a UTF-8
    BOM, replace undecodable bytes. Returns (text, truncated)."""
    truncated = len(body) > MAX_ROBOTS_BYTES
    if truncated:
        body = body[:MAX_ROBOTS_BYTES]
        cut = max(body.rfind(b"\n"), body.rfind(b"\r"))
        if cut != -1:
            body = body[: cut + 1]
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    return body.decode("utf-8", errors="replace"), truncated


def parse_robots(text: str | bytes, source: str = "") -> RobotsDoc:
    """Parse a robots.txt-grammar body (any bytes or text; never raises)."""
    truncated = False
    if isinstance(text, bytes):
        text, truncated = decode_body(text)
    elif len(text) > MAX_ROBOTS_BYTES:
        text, truncated = decode_body(text.encode("utf-8", errors="replace"))
    text = text.removeprefix("\ufeff")
    agents, licenses = _scan(text)
    return RobotsDoc(
        state="parsed",
        text=text,
        http_status=None,
        error=None,
        source=source,
        truncated=truncated,
        licenses=licenses,
        agents=agents,
        parser=Protego.parse(text),
    )


def robots_from_response(
    source: str, http_status: int | None, body: bytes | None, error: str | None
) -> RobotsDoc:
    """Interpret a fetch of robots.txt (after redirects) per RFC 9309 section 2.3.1.

    2xx: parse. 4xx (401 and 403 included): "unavailable", everything allowed. 5xx, no
    response (timeout, network error) or anything else (e.g. a redirect that was not resolved):
    unreachable, i.e. unknown.
    """
    if http_status is not None and 200 <= http_status < 300:
        doc = parse_robots(body or b"", source)
        return RobotsDoc(
            state="parsed",
            text=doc.text,
            http_status=http_status,
            error=None,
            source=source,
            truncated=doc.truncated,
            licenses=doc.licenses,
            agents=doc.agents,
            parser=doc.parser,
        )
    if http_status is not None and 400 <= http_status < 500:
        return RobotsDoc("allow-all", "", http_status, error, source)
    if error is None:
        error = "no response" if http_status is None else f"unusable status {http_status}"
    return RobotsDoc("unreachable", "", http_status, error, source)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be evaluated (e.g. a broken IPv6 literal), or None if it can."""
    try:
        urlsplit(url)
    except ValueError as exc:
        return f"unreadable URL: {exc}"
    return None


@dataclass(frozen=True)
class TokenPlan:
    """Tokens (lower-case, first-seen order, no duplicates) grouped by the group they select.

    Tokens that select the same group get the same answer from every group-scoped signal,
    so each distinct group is evaluated once per URL (`probes[i]` stands for `agents[i]`).
    """

    tokens: tuple[str, ...]
    agents: tuple[str | None, ...]
    probes: tuple[str, ...]
    slots: tuple[int, ...]


def token_plan(doc: RobotsDoc, tokens: Sequence[str]) -> TokenPlan:
    """The (memoized) TokenPlan of `tokens` against `doc`."""
    key = ("token-plan", tuple(tokens))
    plan = doc.memo.get(key)
    if plan is None:
        lowered = tuple(dict.fromkeys(token.lower() for token in tokens))
        agents: list[str | None] = []
        probes: list[str] = []
        slots: list[int] = []
        for token in lowered:
            agent = doc.agent_for(token)
            if agent not in agents:
                agents.append(agent)
                probes.append(token)
            slots.append(agents.index(agent))
        plan = TokenPlan(lowered, tuple(agents), tuple(probes), tuple(slots))
        doc.memo[key] = plan
    return plan


def token_verdicts(doc: RobotsDoc, url: str, tokens: Sequence[str]) -> dict[str, SignalStatus]:
    """Per-token Allow/Disallow verdict for `url` (RESERVED = disallowed).

    Tokens that select the same group share one protego lookup.
    """
    plan = token_plan(doc, tokens)
    if doc.state == "unreachable" or url_problem(url) is not None:
        return dict.fromkeys(plan.tokens, SignalStatus.UNKNOWN)
    parser = doc.parser
    if doc.state == "allow-all" or parser is None:
        return dict.fromkeys(plan.tokens, SignalStatus.ALLOWED)
    allowed, reserved = SignalStatus.ALLOWED, SignalStatus.RESERVED
    per_group = [allowed if parser.can_fetch(url, probe) else reserved for probe in plan.probes]
    return {token: per_group[slot] for token, slot in zip(plan.tokens, plan.slots, strict=True)}


def verdict_signal(
    kind: SignalKind, doc: RobotsDoc, verdicts: Mapping[str, SignalStatus], name: str
) -> Signal:
    """Wrap per-token Allow/Disallow verdicts of `doc` as a Signal of `kind`."""
    status = worst_status(tuple(verdicts.values()))
    if doc.state == "unreachable":
        detail = f"{name} unreachable: {doc.error}"
    elif doc.state == "allow-all":
        detail = f"{name} HTTP {doc.http_status}: unavailable, nothing reserved"
    elif not verdicts:
        detail = "no user-agent tokens evaluated"
    elif status is SignalStatus.UNKNOWN:
        detail = "unreadable URL"
    elif status is SignalStatus.RESERVED:
        blocked = [t for t, v in verdicts.items() if v is SignalStatus.RESERVED]
        detail = "disallowed for " + ", ".join(blocked)
    else:
        detail = "allowed"
    return Signal(
        kind=kind,
        status=status,
        detail=detail,
        source=doc.source or None,
        tokens=verdicts,
        evidence=doc.evidence(),
    )


def robots_signal(doc: RobotsDoc, url: str, tokens: Sequence[str]) -> Signal:
    """The robots.txt verdict for `url` per token (kind ROBOTS); status is the worst."""
    return verdict_signal(SignalKind.ROBOTS, doc, token_verdicts(doc, url, tokens), "robots.txt")


def crawl_delay(doc: RobotsDoc, token: str) -> float | None:
    """The Crawl-delay (seconds) of the group that applies to `token`, if any."""
    if doc.parser is None:
        return None
    return doc.parser.crawl_delay(token.lower())
