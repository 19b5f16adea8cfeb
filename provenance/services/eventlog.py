"""Event-log use cases: verify the chain, show recent events, record an event on its own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provenance.config import Settings
from provenance.domain import utcnow
from provenance.errors import BadInput
from provenance.eventlog import Event, Verification, append_event, recent, verify_chain
from provenance.services.catalog import open_catalog


def verify_log(settings: Settings) -> Verification:
    """Walk the whole chain (read-only)."""
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            return verify_chain(conn)
    finally:
        engine.dispose()


def show_log(settings: Settings, limit: int, kind: str | None = None) -> list[Event]:
    """The last `limit` events, optionally of one kind, oldest first."""
    if limit < 1:
        raise BadInput(f"--limit must be at least 1 (got {limit})")
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            return recent(conn, limit, kind)
    finally:
        engine.dispose()


def record_event(settings: Settings, kind: str, payload: Mapping[str, Any]) -> Event:
    """Append one event in a transaction of its own (for use cases with no other writes)."""
    engine = open_catalog(settings)
    try:
        with engine.begin() as conn:
            return append_event(conn, kind, payload, utcnow())
    finally:
        engine.dispose()
