"""signals_current carries the fields a policy decides on (status, token lists, source, marker)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:00:00

A present-time policy evaluation reads the rank of each latest observation from
`signals_current` alone: without these copies every key it joins costs a second random seek
into `signals` (the largest table). The copies are written by the same trigger as the key, from
the same row, so they are always those of `signal_id`. `invalid_mark` records whether `data`
holds the C2PA invalid-manifest marker (lower-cased containment, as the policy rules test it).
The table is rebuilt: drop, create with the new columns, trigger, backfill (as in 0002).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provenance.db.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_COLS = "scope, subject, kind, signal_id, observed_at"
_NEW_COLS = (f"{_OLD_COLS}, status, tokens_reserved, tokens_unknown, tokens_allowed, source, "
             "invalid_mark")
_FIELDS = ("status", "tokens_reserved", "tokens_unknown", "tokens_allowed", "source",
           "invalid_mark")
# Spelled with the table's own name: SQLite takes no alias on an INSERT inside a trigger.
_NEWER = ("excluded.observed_at > signals_current.observed_at OR (excluded.observed_at = "
          "signals_current.observed_at AND excluded.signal_id > signals_current.signal_id)")
_OLD_SET = "signal_id = excluded.signal_id, observed_at = excluded.observed_at"
_NEW_SET = _OLD_SET + "".join(f", {f} = excluded.{f}" for f in _FIELDS)


def _marker(row: str) -> str:
    return (f"lower(coalesce({row}data, '')) LIKE '%\"validation\\_state\": \"invalid\"%' "
            "ESCAPE '\\'")


def _values(row: str, new: bool) -> str:
    base = f"{row}scope, {row}subject, {row}kind, {row}id, {row}observed_at"
    if not new:
        return base
    return (f"{base}, {row}status, {row}tokens_reserved, {row}tokens_unknown, "
            f"{row}tokens_allowed, {row}source, {_marker(row)}")


def _sqlite_trigger(new: bool) -> str:
    cols, upd = (_NEW_COLS, _NEW_SET) if new else (_OLD_COLS, _OLD_SET)
    return f"""
CREATE TRIGGER signals_current_track AFTER INSERT ON signals
BEGIN
  INSERT INTO signals_current ({cols})
  VALUES ({_values("NEW.", new)})
  ON CONFLICT (scope, subject, kind) DO UPDATE SET {upd} WHERE {_NEWER};
END
"""


def _pg_function(new: bool) -> str:
    cols, upd = (_NEW_COLS, _NEW_SET) if new else (_OLD_COLS, _OLD_SET)
    return f"""
CREATE OR REPLACE FUNCTION signals_current_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO signals_current ({cols})
  SELECT DISTINCT ON (scope COLLATE "C", subject COLLATE "C", kind COLLATE "C")
         {_values("", new)}
  FROM new_signals
  ORDER BY scope COLLATE "C", subject COLLATE "C", kind COLLATE "C", observed_at DESC, id DESC
  ON CONFLICT (scope, subject, kind) DO UPDATE SET {upd} WHERE {_NEWER};
  RETURN NULL;
END
$$
"""


_PG_TRIGGER = """
CREATE TRIGGER signals_current_track AFTER INSERT ON signals
REFERENCING NEW TABLE AS new_signals FOR EACH STATEMENT
EXECUTE FUNCTION signals_current_track()
"""


def _backfill(new: bool) -> str:
    return f"""
INSERT INTO signals_current ({_NEW_COLS if new else _OLD_COLS})
SELECT {_values("", new)} FROM (
  SELECT *, row_number() OVER (
    PARTITION BY scope, subject, kind ORDER BY observed_at DESC, id DESC) AS rn
  FROM signals) AS ranked
WHERE rn = 1
"""


def _columns(new: bool) -> list[sa.Column]:  # type: ignore[type-arg]
    cols = [
        sa.Column('scope', sa.String(length=8), nullable=False),
        sa.Column('subject', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('signal_id', sa.Integer(), nullable=False),
        sa.Column('observed_at', provenance.db.models.UTCDateTime(timezone=True),
                  nullable=False),
    ]
    if new:
        cols += [
            sa.Column('status', sa.String(length=10), nullable=False),
            sa.Column('tokens_reserved', sa.Text(), nullable=True),
            sa.Column('tokens_unknown', sa.Text(), nullable=True),
            sa.Column('tokens_allowed', sa.Text(), nullable=True),
            sa.Column('source', sa.Text(), nullable=True),
            sa.Column('invalid_mark', sa.Boolean(), nullable=False),
        ]
    return cols


def _rebuild(new: bool) -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS signals_current_track ON signals" if pg
               else "DROP TRIGGER IF EXISTS signals_current_track")
    op.drop_table('signals_current')
    op.create_table('signals_current', *_columns(new),
        sa.ForeignKeyConstraint(['signal_id'], ['signals.id'],
                                name=op.f('fk_signals_current_signal_id_signals')),
        sa.PrimaryKeyConstraint('scope', 'subject', 'kind', name=op.f('pk_signals_current')),
        sqlite_with_rowid=False
    )
    if pg:
        op.execute(_pg_function(new))
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_sqlite_trigger(new))
    op.execute(_backfill(new))


def upgrade() -> None:
    _rebuild(new=True)


def downgrade() -> None:
    _rebuild(new=False)
