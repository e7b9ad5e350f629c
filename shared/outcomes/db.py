"""Engines and sessions: one way to reach the database from every service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from outcomes.config import DatabaseTimeouts

WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}
DEFAULT_TIMEOUTS = DatabaseTimeouts()
# SQLSTATEs that mean "try again later", not "this run is wrong": the session was ended (idle in
# transaction too long, administrator or shutdown), a lock was not granted in time, the server is
# starting, or a concurrent transaction won. psycopg raises most of them as OperationalError, but
# 25P03 as InternalError, and a lost connection may surface as any DBAPIError.
RETRYABLE_SQLSTATES = frozenset({"25P03", "55P03", "57P01", "57P02", "57P03", "40001", "40P01"})


def _tune_sqlite(dbapi_connection, _record) -> None:
    """Turn on WAL and foreign keys, and wait rather than fail while another writer commits."""
    # We emit BEGIN ourselves (see _begin_sqlite); the driver's own transaction handling is off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside one writer; NORMAL is safe with WAL and ~3x faster (FACTS.md).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgres_connect_args(url: str, timeouts: DatabaseTimeouts) -> dict[str, object]:
    """Return libpq parameters that bound connecting and notice a vanished peer at both ends."""
    # The server's side of the same deadlines: a backend whose client vanished ends, and its
    # locks go with it, instead of lasting TCP's defaults (15 minutes to 2 h 11 min).
    server: dict[str, int] = {
        "tcp_keepalives_idle": timeouts.keepalive_idle,
        "tcp_keepalives_interval": timeouts.keepalive_interval,
        "tcp_keepalives_count": timeouts.keepalive_count,
        "tcp_user_timeout": timeouts.tcp_user * 1000,
    }
    if timeouts.lock:
        server["lock_timeout"] = int(timeouts.lock * 1000)
    if timeouts.idle_in_transaction:
        server["idle_in_transaction_session_timeout"] = int(timeouts.idle_in_transaction * 1000)
    options = " ".join(f"-c {name}={value}" for name, value in server.items())
    given = make_url(url).query.get("options")  # connect_args would replace the URL's own
    return {
        "connect_timeout": timeouts.connect,
        "keepalives": 1,
        "keepalives_idle": timeouts.keepalive_idle,
        "keepalives_interval": timeouts.keepalive_interval,
        "keepalives_count": timeouts.keepalive_count,
        "tcp_user_timeout": timeouts.tcp_user * 1000,
        "options": f"{given} {options}" if isinstance(given, str) else options,
    }


def _begin_sqlite(conn: Connection) -> None:
    """Begin a transaction; writers take the write lock up front, so they queue, never fail."""
    # A deferred transaction that read first cannot wait for the lock when it later writes:
    # SQLite answers "database is locked" at once. BEGIN IMMEDIATE waits (busy_timeout) instead.
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


@lru_cache(maxsize=16)
def get_engine(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    """Return the process-wide engine for a database URL and connection deadlines."""
    if url.startswith("sqlite"):
        # SQLite's lock wait is its busy timeout (the driver's timeout sets it on connect).
        engine = create_engine(url, connect_args={"timeout": timeouts.lock or 30})
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # pre_ping: a PostgreSQL restart must not hand a dead pooled connection to a request.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args=_postgres_connect_args(url, timeouts),
    )


def writer_engine(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    """Return the engine for transactions that write (on SQLite they queue for the write lock)."""
    return get_engine(url, timeouts).execution_options(**WRITE)


@lru_cache(maxsize=16)
def session_factory(
    url: str, *, write: bool = True, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS
) -> sessionmaker[Session]:
    """Return a session factory for a database URL, for writing or only reading."""
    engine = writer_engine(url, timeouts) if write else get_engine(url, timeouts)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(
    url: str, *, write: bool = True, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS
) -> Iterator[Session]:
    """Open a session that commits on success and rolls back on any error."""
    with session_factory(url, write=write, timeouts=timeouts).begin() as session:
        yield session


def is_retryable(error: BaseException) -> bool:
    """Say whether a database error is worth retrying: a lost connection, a timeout, a busy lock."""
    if not isinstance(error, DBAPIError):
        return False
    # OperationalError: failures to connect, lost connections, SQLite's "database is locked".
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return (
        isinstance(error, OperationalError)
        or error.connection_invalidated
        or sqlstate in RETRYABLE_SQLSTATES
        or sqlstate.startswith("08")
    )
