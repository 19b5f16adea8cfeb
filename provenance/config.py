"""Settings from flags and environment, resolved once in the CLI and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_USER_AGENT_TOKEN = "provenance-bot"
DEFAULT_USER_AGENT = (
    f"{DEFAULT_USER_AGENT_TOKEN}/0.1 (+https://github.com/provenance; AI training provenance)"
)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything a service needs to know about where things live and how to behave."""

    db_url: str
    store_dir: Path
    allow_private: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    engine: str = "local"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")


def default_db_url(cwd: Path) -> str:
    return f"sqlite:///{(cwd / '.provenance' / 'catalog.db').resolve()}"


def resolve_settings(
    db: str | None = None,
    store: str | None = None,
    allow_private: bool | None = None,
    user_agent: str | None = None,
    engine: str | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Flags win over environment, environment over defaults."""
    here = cwd or Path.cwd()
    db_url = db or os.environ.get("PROVENANCE_DB") or default_db_url(here)
    store_dir = Path(
        store or os.environ.get("PROVENANCE_STORE") or here / ".provenance" / "objects"
    )
    private = (
        allow_private if allow_private else _truthy(os.environ.get("PROVENANCE_ALLOW_PRIVATE"))
    )
    return Settings(
        db_url=db_url,
        store_dir=store_dir.resolve(),
        allow_private=private,
        user_agent=user_agent or os.environ.get("PROVENANCE_USER_AGENT") or DEFAULT_USER_AGENT,
        engine=engine or os.environ.get("PROVENANCE_ENGINE") or "local",
    )
