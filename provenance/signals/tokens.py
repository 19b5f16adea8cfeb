"""The default user-agent tokens evaluated against robots.txt-family signals.

The list ships as data (`provenance/data/ai_user_agents.toml`) with its sources named, so it
can be updated without touching code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_DATA_FILE = "ai_user_agents.toml"


@dataclass(frozen=True)
class AgentInfo:
    """One crawler of the shipped list: its robots.txt product token and who documents it."""

    token: str
    operator: str
    purpose: str
    source: str


@lru_cache(maxsize=1)
def known_agents() -> tuple[AgentInfo, ...]:
    """The crawlers listed in the shipped data file, in file order (tokens lower-cased)."""
    raw = resources.files("provenance").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    agents: list[AgentInfo] = []
    seen: set[str] = set()
    for entry in data.get("agent", []):
        token = str(entry["token"]).strip().lower()
        if not token or token in seen:
            continue
        seen.add(token)
        agents.append(
            AgentInfo(
                token=token,
                operator=str(entry.get("operator", "")),
                purpose=str(entry.get("purpose", "")),
                source=str(entry.get("source", "")),
            )
        )
    return tuple(agents)


def default_tokens() -> tuple[str, ...]:
    """Lower-case product tokens of the AI crawlers evaluated by default, in file order."""
    return tuple(agent.token for agent in known_agents())


def normalize_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    """Lower-case, strip and de-duplicate tokens, keeping their first-seen order."""
    out: list[str] = []
    for token in tokens:
        clean = token.strip().lower()
        if clean and clean not in out:
            out.append(clean)
    return tuple(out)
