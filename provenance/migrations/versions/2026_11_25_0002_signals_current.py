"""signals_current: the newest observation per (scope, subject, kind), kept by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:00:00

Present-time policy evaluation joins this table instead of probing each key's history for a
newer observation. A trigger on `signals` keeps it in step for every writer and transaction:
on SQLite one upsert per inserted row; on PostgreSQL one set-based upsert per statement over
its transition table (one row per key, newest first, so ON CONFLICT never touches a row twice).
The upsert replaces a row only with a newer observation (observed_at, then id), so concurrent
writers converge on the newest whatever the commit order. Its row locks are held to commit, so
on PostgreSQL writers must take them in one order: each statement upserts in byte order of the
key (COLLATE "C"), and `record_observations` inserts its rows in that same order. The backfill runs after the trigger
exists; on PostgreSQL creating the trigger locks out concurrent inserts until commit.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provenance.db.models

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled with the table's own name: SQLite takes no alias on an INSERT inside a trigger.
_NEWER = ("excluded.observed_at > signals_current.observed_at OR (excluded.observed_at = "
          "signals_current.observed_at AND excluded.signal_id > signals_current.signal_id)")
_SET = "signal_id = excluded.signal_id, observed_at = excluded.observed_at"

_SQLITE_TRIGGER = f"""
CREATE TRIGGER signals_current_track AFTER INSERT ON signals
BEGIN
  INSERT INTO signals_current (scope, subject, kind, signal_id, observed_at)
  VALUES (NEW.scope, NEW.subject, NEW.kind, NEW.id, NEW.observed_at)
  ON CONFLICT (scope, subject, kind) DO UPDATE SET {_SET} WHERE {_NEWER};
END
"""

_PG_FUNCTION = f"""
CREATE FUNCTION signals_current_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO signals_current (scope, subject, kind, signal_id, observed_at)
  SELECT DISTINCT ON (scope COLLATE "C", subject COLLATE "C", kind COLLATE "C")
         scope, subject, kind, id, observed_at
  FROM new_signals
  ORDER BY scope COLLATE "C", subject COLLATE "C", kind COLLATE "C", observed_at DESC, id DESC
  ON CONFLICT (scope, subject, kind) DO UPDATE SET {_SET} WHERE {_NEWER};
  RETURN NULL;
END
$$
"""

_PG_TRIGGER = """
CREATE TRIGGER signals_current_track AFTER INSERT ON signals
REFERENCING NEW TABLE AS new_signals FOR EACH STATEMENT
EXECUTE FUNCTION signals_current_track()
"""

_BACKFILL = """
INSERT INTO signals_current (scope, subject, kind, signal_id, observed_at)
SELECT scope, subject, kind, id, observed_at FROM (
  SELECT scope, subject, kind, id, observed_at, row_number() OVER (
    PARTITION BY scope, subject, kind ORDER BY observed_at DESC, id DESC) AS rn
  FROM signals) AS ranked
WHERE rn = 1
"""


def upgrade() -> None:
    op.create_table('signals_current',
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('signal_id', sa.Integer(), nullable=False),
    sa.Column('observed_at', provenance.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['signal_id'], ['signals.id'], name=op.f('fk_signals_current_signal_id_signals')),
    sa.PrimaryKeyConstraint('scope', 'subject', 'kind', name=op.f('pk_signals_current')),
    sqlite_with_rowid=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS signals_current_track ON signals"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS signals_current_track")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS signals_current_track()")
    op.drop_table('signals_current')
