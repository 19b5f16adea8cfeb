"""`provenance db partition`: convert the large tables of a PostgreSQL catalog to declarative
RANGE partitions on the scale-out keys, preserving every row.

- images, export_members: by sha256 (range of the first 16 bits, written as 4-hex prefixes);
- sightings: by host bucket (the first 16 bits of sha256(host), the fetch partition key), rows
  without a URL (no bucket) in a DEFAULT partition;
- signals: by `bucket` (the host bucket of a host or URL subject, the sha256 range of an image:
  the same 16-bit space), so a host's observations sit in its sightings' range; fetch_attempts:
  by the host bucket of its URL. Both with a DEFAULT partition for rows without one.

PostgreSQL requires every unique key of a partitioned table to include its partition key. For
images and export_members that already holds. For sightings the id and the natural key become
UNIQUE NULLS NOT DISTINCT (id, host_bucket) and (sighting_key, host_bucket): the bucket is a
function of the sighting's URL, which is part of its key, so uniqueness is unchanged in
effect; inserts name the widened conflict target (db.bulk.conflict_columns). The ids of
signals and fetch_attempts likewise become unique with their bucket. Foreign keys that point at
the id of sightings or signals cannot be kept (no unique key on id alone) and are dropped
(fetch_attempts.sighting_id, signals_current.signal_id, ...); the others are re-created, and so
are the tables' triggers (the one on signals keeps signals_current).

The conversion runs in one transaction per table group (create the partitioned copy, move the
rows, drop the original, rename): interrupted, nothing changes. It is a maintenance step; run
it while no other command writes to the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from provenance.db.bulk import partition_columns
from provenance.errors import BadInput

BUCKETS = 65536


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: str
    hex_key: bool  # sha256 text (bounds as hex prefixes) vs integer host bucket
    uniques: tuple[tuple[str, str], ...]  # (constraint name, definition)
    default_partition: bool = False
    # The id's uniqueness is widened to (id, key): foreign keys to its id cannot be kept.
    widened_id: bool = False


SPECS: tuple[TableSpec, ...] = (
    TableSpec("images", "sha256", True, (("pk_images", "PRIMARY KEY (sha256)"),)),
    TableSpec(
        "sightings",
        "host_bucket",
        False,
        (
            ("uq_sightings_id", "UNIQUE NULLS NOT DISTINCT (id, host_bucket)"),
            ("uq_sightings_sighting_key", "UNIQUE NULLS NOT DISTINCT (sighting_key, host_bucket)"),
        ),
        default_partition=True,
        widened_id=True,
    ),
    TableSpec(
        "signals",
        "bucket",
        False,
        (("uq_signals_id", "UNIQUE NULLS NOT DISTINCT (id, bucket)"),),
        default_partition=True,
        widened_id=True,
    ),
    TableSpec(
        "fetch_attempts",
        "host_bucket",
        False,
        (("uq_fetch_attempts_id", "UNIQUE NULLS NOT DISTINCT (id, host_bucket)"),),
        default_partition=True,
        widened_id=True,
    ),
    TableSpec(
        "export_members",
        "image_sha256",
        True,
        (("pk_export_members", "PRIMARY KEY (export_id, image_sha256)"),),
    ),
)


@dataclass(frozen=True)
class PartitionReport:
    count: int
    converted: list[str]
    already: list[str]
    rows: dict[str, int]
    dropped_foreign_keys: list[str]

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "converted": self.converted,
            "already_partitioned": self.already,
            "rows": self.rows,
            "dropped_foreign_keys": self.dropped_foreign_keys,
        }


def bounds(count: int, hex_key: bool) -> list[tuple[str, str]]:
    """FROM/TO literals of the `count` ranges over the first 16 bits of the key."""
    edges = [k * BUCKETS // count for k in range(count + 1)]
    out: list[tuple[str, str]] = []
    for k in range(count):
        if hex_key:
            lo = "MINVALUE" if k == 0 else f"'{edges[k]:04x}'"
            hi = "MAXVALUE" if k == count - 1 else f"'{edges[k + 1]:04x}'"
        else:
            lo = "MINVALUE" if k == 0 else str(edges[k])
            hi = "MAXVALUE" if k == count - 1 else str(edges[k + 1])
        out.append((lo, hi))
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _foreign_keys(conn: Connection, tables: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(table, constraint, definition, referenced table) of every FK from or to `tables`."""
    rows = conn.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid),
                   c.confrelid::regclass::text
            FROM pg_constraint c
            WHERE c.contype = 'f'
              AND (c.conrelid = ANY (CAST(:oids AS regclass[]))
                   OR c.confrelid = ANY (CAST(:oids AS regclass[])))
            ORDER BY 1, 2
            """
        ),
        {"oids": list(tables)},
    ).all()
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


# The statements that re-create what a converted table loses with the original: its plain
# (non-unique) indexes, and its own triggers (the one on signals keeps signals_current).
_RECREATE = {
    "indexes": "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
               "WHERE i.indrelid = to_regclass(:t) AND NOT i.indisunique ORDER BY 1",
    "triggers": "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "WHERE t.tgrelid = to_regclass(:t) AND NOT t.tgisinternal ORDER BY t.tgname",
}


def _definitions(conn: Connection, what: str, table: str) -> list[str]:
    """CREATE statements of the table's plain indexes or triggers (`what`)."""
    return list(conn.execute(text(_RECREATE[what]), {"t": table}).scalars())


def _owned_sequences(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(sequence, column) pairs owned by the table's columns (serial ids)."""
    rows = conn.execute(
        text(
            """
            SELECT s.relname, a.attname
            FROM pg_depend d
            JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.refobjid = to_regclass(:t) AND d.deptype = 'a'
            """
        ),
        {"t": table},
    ).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _convert(conn: Connection, spec: TableSpec, count: int) -> int:
    """Partitioned copy, rows moved, original dropped, names swapped. Returns rows moved."""
    t, new = spec.name, f"{spec.name}__partitioned"
    indexes = _definitions(conn, "indexes", t)
    triggers = _definitions(conn, "triggers", t)
    sequences = _owned_sequences(conn, t)
    conn.execute(
        text(
            f"CREATE TABLE {_q(new)} (LIKE {_q(t)} INCLUDING DEFAULTS) "
            f"PARTITION BY RANGE ({_q(spec.key)})"
        )
    )
    for k, (lo, hi) in enumerate(bounds(count, spec.hex_key)):
        conn.execute(
            text(
                f"CREATE TABLE {_q(f'{t}_p{k:05d}')} PARTITION OF {_q(new)} "
                f"FOR VALUES FROM ({lo}) TO ({hi})"
            )
        )
    if spec.default_partition:
        conn.execute(text(f"CREATE TABLE {_q(f'{t}_pdefault')} PARTITION OF {_q(new)} DEFAULT"))
    moved = conn.execute(text(f"INSERT INTO {_q(new)} SELECT * FROM {_q(t)}")).rowcount
    for seq, _col in sequences:
        conn.execute(text(f"ALTER SEQUENCE {_q(seq)} OWNED BY NONE"))
    conn.execute(text(f"DROP TABLE {_q(t)}"))
    conn.execute(text(f"ALTER TABLE {_q(new)} RENAME TO {_q(t)}"))
    for seq, col in sequences:
        conn.execute(text(f"ALTER SEQUENCE {_q(seq)} OWNED BY {_q(t)}.{_q(col)}"))
    for name, definition in spec.uniques:
        conn.execute(text(f"ALTER TABLE {_q(t)} ADD CONSTRAINT {_q(name)} {definition}"))
    for statement in indexes:
        conn.execute(text(statement))
    for statement in triggers:  # after the rows moved: they were tracked when first written
        conn.execute(text(statement))
    return int(moved)


def partition_catalog(engine: Engine, count: int) -> PartitionReport:
    """Convert the large tables to `count` RANGE partitions each (see the module docstring)."""
    if engine.dialect.name != "postgresql":
        raise BadInput(
            "db partition is for PostgreSQL catalogs only; SQLite has no table partitioning "
            "(move a big catalog to PostgreSQL first)"
        )
    if not 2 <= count <= 4096:
        raise BadInput(f"--count must be between 2 and 4096 (got {count})")
    with engine.begin() as conn:
        already = [s.name for s in SPECS if partition_columns(conn, s.name)]
        todo = [s for s in SPECS if s.name not in already]
        if not todo:
            return PartitionReport(count, [], already, {}, [])
        names = [s.name for s in todo]
        conn.execute(text(f"LOCK TABLE {', '.join(_q(n) for n in names)} IN ACCESS EXCLUSIVE MODE"))
        fks = _foreign_keys(conn, names)
        for table, name, _definition, _ref in fks:
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {_q(name)}"))
        rows = {spec.name: _convert(conn, spec, count) for spec in todo}
        dropped: list[str] = []
        widened = {s.name for s in todo if s.widened_id}
        for table, name, definition, ref in fks:
            if ref in widened:
                dropped.append(f"{table}.{name}")  # no unique key on its id alone any more
                continue
            conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {_q(name)} {definition}"))
    return PartitionReport(count, names, already, rows, dropped)
