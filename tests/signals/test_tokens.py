"""The shipped AI crawler token list (provenance/data/ai_user_agents.toml)."""

from __future__ import annotations

import tomllib
from importlib import resources

from provenance.signals.tokens import default_tokens, known_agents, normalize_tokens

# Tokens the signals issue names explicitly; the list must keep them.
REQUIRED = {
    "ccbot",
    "gptbot",
    "google-extended",
    "anthropic-ai",
    "claudebot",
    "applebot-extended",
    "img2dataset",
    "bytespider",
    "meta-externalagent",
    "cohere-training-data-crawler",
    "perplexitybot",
}


def test_default_tokens_are_lower_case_unique_and_complete() -> None:
    tokens = default_tokens()
    assert set(tokens) >= REQUIRED
    assert all(t == t.lower().strip() and t for t in tokens)
    assert len(tokens) == len(set(tokens))


def test_data_file_names_its_sources_and_date() -> None:
    raw = resources.files("provenance").joinpath("data", "ai_user_agents.toml").read_text()
    data = tomllib.loads(raw)
    assert data["meta"]["updated"]
    names = " ".join(s["name"] for s in data["meta"]["sources"])
    assert "ai-robots-txt" in names
    assert all(agent.source.startswith("https://") for agent in known_agents())
    assert all(agent.purpose in {"training", "ai-input", "dataset"} for agent in known_agents())


def test_normalize_tokens() -> None:
    assert normalize_tokens([" MyBot ", "GPTBot", "mybot", ""]) == ("mybot", "gptbot")
