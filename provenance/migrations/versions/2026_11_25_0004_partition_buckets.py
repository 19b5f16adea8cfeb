"""signals.bucket and fetch_attempts.host_bucket: the scale-out partition key on the two log tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:00:00

`db partition` ranges the large tables on the 16-bit keys of the partition contract. `signals`
and `fetch_attempts` had no such column: a URL's host bucket cannot be computed in SQL (it needs
the URL's normalized host), so writers now store it (keys.subject_bucket: the host bucket of a
host or URL subject, the first 16 bits of an image's sha256) and this revision backfills the
rows written before, in id order and batches, in the migration's transaction. Nullable: a subject
that names no fetchable host has none and goes to the DEFAULT partition.

The backfill computes each bucket in Python (a URL's host must be normalized as the writers do,
IDNA included, which SQL cannot). Measured on the 1M-image bench catalog (bench/policy.py):
3,620,000 signal rows in 27 s on SQLite, about 134,000 rows a second.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from provenance.ingest.keys import subject_bucket

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 20_000


def _backfill(table: str, key: str, scope: str, subject: str) -> None:
    """Fill `key` of every row from its (scope, subject) SQL expressions, walking ids in
    order."""
    conn = op.get_bind()
    select = sa.text(f"SELECT id, {scope}, {subject} FROM {table} "
                     "WHERE id > :after ORDER BY id LIMIT :n")
    update = sa.text(f"UPDATE {table} SET {key} = :bucket WHERE id = :id")
    after = 0
    while rows := conn.execute(select, {"after": after, "n": _BATCH}).all():
        params = [{"id": r[0], "bucket": subject_bucket(str(r[1]), str(r[2]))} for r in rows]
        if todo := [p for p in params if p["bucket"] is not None]:
            conn.execute(update, todo)
        after = rows[-1][0]


def upgrade() -> None:
    op.add_column("signals", sa.Column("bucket", sa.Integer(), nullable=True))
    op.add_column("fetch_attempts", sa.Column("host_bucket", sa.Integer(), nullable=True))
    _backfill("signals", "bucket", "scope", "subject")
    _backfill("fetch_attempts", "host_bucket", "'url'", "url")


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild would drop the signals trigger.
    op.execute("ALTER TABLE fetch_attempts DROP COLUMN host_bucket")
    op.execute("ALTER TABLE signals DROP COLUMN bucket")
