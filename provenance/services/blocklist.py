"""Importing and listing crawl blocklists. A list is identified by name and version; a version
is immutable evidence of what was in force, so importing the same name+version again is a
no-op when the entries agree and an error when they differ (import it as a new version)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from provenance.blocklist import DOMAIN, URL_PREFIX, BadLine, parse_blocklist
from provenance.config import Settings
from provenance.db.engine import transaction
from provenance.db.models import Blocklist, BlocklistEntry
from provenance.domain import iso, utcnow
from provenance.errors import BadInput
from provenance.services.catalog import open_catalog

_BATCH = 5000


@dataclass(frozen=True)
class ImportResult:
    """What one `blocklist import` did."""

    list_id: int
    name: str
    version: str
    source: str | None
    entries: int
    domains: int
    url_prefixes: int
    already_imported: bool
    bad: tuple[BadLine, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "list_id": self.list_id,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "entries": self.entries,
            "domains": self.domains,
            "url_prefixes": self.url_prefixes,
            "already_imported": self.already_imported,
            "bad": len(self.bad),
            "bad_lines": [{"line": b.line, "text": b.text, "reason": b.reason} for b in self.bad],
        }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read blocklist {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"blocklist {path} is not UTF-8 text ({exc})") from exc


def _stored_entries(conn: Connection, list_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        select(BlocklistEntry.kind, BlocklistEntry.value)
        .where(BlocklistEntry.list_id == list_id)
        .order_by(BlocklistEntry.kind, BlocklistEntry.value)
    ).all()
    return [(kind, value) for kind, value in rows]


def import_blocklist(
    settings: Settings,
    path: Path,
    name: str,
    version: str,
    source: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Parse the file, then store the list and its entries in one transaction."""
    if not name.strip() or not version.strip():
        raise BadInput("--name and --version must not be empty")
    parsed = parse_blocklist(_read(path), csv_format=path.suffix.lower() == ".csv")
    if not parsed.entries:
        raise BadInput(f"{path}: no usable entry ({len(parsed.bad)} bad line(s))")
    entries = parsed.entries
    counts = (
        sum(1 for k, _ in entries if k == DOMAIN),
        sum(1 for k, _ in entries if k == URL_PREFIX),
    )
    engine = open_catalog(settings)
    try:
        with transaction(engine) as conn:
            existing = conn.execute(
                select(Blocklist.id, Blocklist.source).where(
                    Blocklist.name == name, Blocklist.version == version
                )
            ).first()
            if existing is not None:
                if _stored_entries(conn, existing.id) != entries:
                    raise BadInput(
                        f"blocklist {name} version {version} is already imported with other "
                        "entries; import the new list under a new --version"
                    )
                return ImportResult(existing.id, name, version, existing.source, len(entries),
                                    *counts, True, tuple(parsed.bad))
            list_id = conn.execute(
                insert(Blocklist)
                .values(name=name, version=version, source=source,
                        imported_at=now or utcnow(), entries=len(entries))
                .returning(Blocklist.id)
            ).scalar_one()
            rows = [{"list_id": list_id, "kind": k, "value": v} for k, v in entries]
            for start in range(0, len(rows), _BATCH):
                conn.execute(insert(BlocklistEntry), rows[start:start + _BATCH])
    finally:
        engine.dispose()
    return ImportResult(list_id, name, version, source, len(entries), *counts, False,
                        tuple(parsed.bad))


def list_blocklists(settings: Settings) -> list[dict[str, Any]]:
    """Every imported list and version, oldest first, with its entry counts by kind."""
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            kinds = dict(
                ((list_id, kind), n)
                for list_id, kind, n in conn.execute(
                    select(BlocklistEntry.list_id, BlocklistEntry.kind, func.count())
                    .group_by(BlocklistEntry.list_id, BlocklistEntry.kind)
                ).all()
            )
            lists = conn.execute(select(Blocklist.__table__).order_by(Blocklist.id)).all()
    finally:
        engine.dispose()
    return [
        {
            "id": b.id,
            "name": b.name,
            "version": b.version,
            "source": b.source,
            "imported_at": iso(b.imported_at),
            "entries": b.entries,
            "domains": kinds.get((b.id, DOMAIN), 0),
            "url_prefixes": kinds.get((b.id, URL_PREFIX), 0),
        }
        for b in lists
    ]
