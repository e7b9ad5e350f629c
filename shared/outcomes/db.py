"""Engines and sessions: one way to reach the database from every service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}


def _tune_sqlite(dbapi_connection, _record) -> None:
    """Turn on WAL and foreign keys, and wait rather than fail while another writer commits."""
    # We emit BEGIN ourselves (see _begin_sqlite); the driver's own transaction handling is off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside one writer; NORMAL is safe with WAL and ~3x faster (FACTS.md).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_sqlite(conn: Connection) -> None:
    """Begin a transaction; writers take the write lock up front, so they queue, never fail."""
    # A deferred transaction that read first cannot wait for the lock when it later writes:
    # SQLite answers "database is locked" at once. BEGIN IMMEDIATE waits (busy_timeout) instead.
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    """Return the process-wide engine for a database URL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # pre_ping: a PostgreSQL restart must not hand a dead pooled connection to a request.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def writer_engine(url: str) -> Engine:
    """Return the engine for transactions that write (on SQLite they queue for the write lock)."""
    return get_engine(url).execution_options(**WRITE)


@lru_cache(maxsize=16)
def session_factory(url: str, *, write: bool = True) -> sessionmaker[Session]:
    """Return a session factory for a database URL, for writing or only reading."""
    engine = writer_engine(url) if write else get_engine(url)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(url: str, *, write: bool = True) -> Iterator[Session]:
    """Open a session that commits on success and rolls back on any error."""
    with session_factory(url, write=write).begin() as session:
        yield session
