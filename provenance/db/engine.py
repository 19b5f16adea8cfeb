"""Engine and session factory, SQLite pragmas, and the schema-at-head check."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from provenance.db.bulk import COPY_THRESHOLD, conflict_columns, copy_insert_ignore
from provenance.errors import BadInput, CatalogError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Large catalogs insert into random-key indexes (sha256, sighting keys): a bigger page
    # cache keeps those inserts from going to disk for every row.
    cur.execute("PRAGMA cache_size=-262144")
    cur.close()


def make_engine(url: str, *, create_dirs: bool = False) -> Engine:
    """Create an engine for any SQLAlchemy URL; SQLite gets WAL mode and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInput(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        db_path = parsed.database
        if db_path and db_path != ":memory:":
            parent = Path(db_path).parent
            if create_dirs:
                parent.mkdir(parents=True, exist_ok=True)
            elif not Path(db_path).exists():
                raise CatalogError(
                    f"no catalog at {db_path}; run `provenance init` (or pass --db) first"
                )
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise BadInput(f"unsupported database URL {url!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise CatalogError(
            f"the driver for {parsed.get_backend_name()} is not installed ({exc.name}); "
            "install it with `pip install 'provenance[postgres]'`"
        ) from exc


def check_reachable(engine: Engine) -> None:
    """Raise CatalogError with a clear message if the catalog cannot be reached."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        raise CatalogError(
            f"catalog unreachable at {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One unit of work: commit on success, roll back on any error."""
    with engine.begin() as conn:
        yield conn


def dialect_insert(conn: Connection, table: Table) -> Any:
    """A dialect-specific INSERT that supports `on_conflict_do_nothing()`."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise CatalogError(f"unsupported database dialect {conn.dialect.name!r}")


def insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, index: Sequence[str]
) -> int:
    """Batched INSERT ... ON CONFLICT (index) DO NOTHING. Returns how many rows were new.

    SQLite: one driver-level executemany of a statement compiled once (SQLAlchemy's per-row
    parameter processing costs more than the insert itself on large manifests), counted by the
    driver's rowcount. PostgreSQL: from COPY_THRESHOLD rows on, COPY into a staging table and
    one INSERT ... SELECT (db.bulk); smaller batches as multi-VALUES with RETURNING to count."""
    if not rows:
        return 0
    if conn.dialect.name == "sqlite":
        columns = tuple(rows[0])
        sql, processors = _compiled_sqlite_insert(table, columns, tuple(index))
        getter = itemgetter(*columns)
        params = [getter(row) for row in rows]
        for pos, proc in enumerate(processors):
            if proc is None:
                continue
            # Typed columns here are timestamps shared by a whole batch: convert each once.
            cache = {value: proc(value) for value in {p[pos] for p in params}}
            params = [(*p[:pos], cache[p[pos]], *p[pos + 1 :]) for p in params]
        result = conn.exec_driver_sql(sql, params)
        return int(result.rowcount)
    if len(rows) >= COPY_THRESHOLD:
        return copy_insert_ignore(conn, table, rows, index=index)[0]
    key = table.c[index[0]]
    target = conflict_columns(conn, table, index)
    stmt = dialect_insert(conn, table).on_conflict_do_nothing(index_elements=target)
    return len(conn.execute(stmt.returning(key), list(rows)).all())


def insert_ignore_columns(
    conn: Connection,
    table: Table,
    columns: Mapping[str, Sequence[Any]],
    shared: Mapping[str, Any],
    *,
    index: Sequence[str],
) -> int:
    """insert_ignore for rows given as columns: `columns` maps a name to one value per row,
    `shared` to one value for every row. Returns how many rows were new.

    On SQLite the parameter tuples are zipped in C from the columns (no per-row dict or Python
    loop) and typed values are converted once per distinct value; other backends take dicts."""
    size = len(next(iter(columns.values()), ()))
    if not size:
        return 0
    given = {**columns, **shared}
    names = tuple(c.name for c in table.columns if c.name in given)
    if len(names) != len(given):
        raise CatalogError(f"unknown columns for {table.name}: {sorted(set(given) - set(names))}")
    if conn.dialect.name != "sqlite":
        rows = [dict(zip(names, row, strict=True)) for row in _zipped(names, columns, shared, {})]
        return insert_ignore(conn, table, rows, index=index)
    sql, processors = _compiled_sqlite_insert(table, names, tuple(index))
    procs = {name: proc for name, proc in zip(names, processors, strict=True) if proc is not None}
    result = conn.exec_driver_sql(sql, list(_zipped(names, columns, shared, procs)))
    return int(result.rowcount)


def _zipped(
    names: Sequence[str],
    columns: Mapping[str, Sequence[Any]],
    shared: Mapping[str, Any],
    procs: Mapping[str, Callable[[Any], Any]],
) -> Iterator[tuple[Any, ...]]:
    streams: list[Iterable[Any]] = []
    for name in names:
        proc = procs.get(name)
        if name in shared:
            value = shared[name]
            streams.append(repeat(proc(value) if proc else value))
        elif proc is not None:
            cache = {value: proc(value) for value in set(columns[name])}
            streams.append(map(cache.__getitem__, columns[name]))
        else:
            streams.append(columns[name])
    return zip(*streams)  # noqa: B905 - shared values repeat; the column lists are equal


@lru_cache(maxsize=64)
def _compiled_sqlite_insert(
    table: Table, columns: tuple[str, ...], index: tuple[str, ...]
) -> tuple[str, list[Callable[[Any], Any] | None]]:
    dialect = sqlite.dialect()
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index))
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    order = compiled.positiontup or []
    if list(order) != list(columns):
        raise CatalogError(f"unexpected parameter order compiling an insert into {table.name}")
    binds = compiled._bind_processors
    return compiled.string, [cast(Callable[[Any], Any] | None, binds.get(col)) for col in columns]


def table_names(engine: Engine) -> list[str]:
    try:
        return sorted(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise CatalogError(f"cannot read the catalog: {exc}") from exc
