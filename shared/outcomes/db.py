"""Engines and sessions: one way to reach the database from every service."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from outcomes.config import DatabaseTimeouts

WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}
# Keys of a SQLite connection's info: its open file of the writers' lock, and how long to wait.
WRITE_QUEUE, LOCK_WAIT = "outcomes_write_queue", "outcomes_lock_wait"
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
    begin = conn.get_execution_options().get("sqlite_begin", "BEGIN")
    queue = conn.connection.info.get(WRITE_QUEUE)
    if queue is None or begin == "BEGIN":
        conn.exec_driver_sql(begin)
        return
    seconds = conn.connection.info[LOCK_WAIT]
    try:
        left = _queue_for_writing(queue, seconds)
        if left >= seconds:
            conn.exec_driver_sql(begin)
            return
        # BEGIN waits only what is left of the lock timeout (a writer outside the queue, such
        # as a migration, may hold SQLite's lock): one try if nothing is left.
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(left * 1000)}")
        try:
            conn.exec_driver_sql(begin)
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
    except BaseException:
        _leave(queue)
        raise


def _queue_for_writing(queue: BinaryIO, seconds: float) -> float:
    """Take the writers' file lock, polling every millisecond; return the seconds left."""
    # SQLite's own wait (its busy handler) sleeps 1, 2, 5, ... up to 100 ms between tries, so
    # a writer can sleep on long after the lock was freed while later writers overtake it: one
    # save waited 1.5 s behind 2 ms transactions (BENCHMARKS.md). SQLite's lock stays the
    # authority: this lock only orders the writers that wait.
    try:
        fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return seconds
    except BlockingIOError:
        pass
    deadline = time.monotonic() + seconds
    while True:
        time.sleep(0.001)
        try:
            fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return max(0.0, deadline - time.monotonic())
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return 0.0


def _leave(queue: BinaryIO) -> None:
    """Release the writers' file lock if this connection's file is still open."""
    if not queue.closed:  # an invalidated connection's file is closed, and its lock with it
        fcntl.flock(queue, fcntl.LOCK_UN)  # unlocking a lock not held is a no-op


def _release_after(finish: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wrap a dialect's commit or rollback to leave the writers' queue once it is done."""

    def finished(dbapi_connection: Any) -> None:
        try:
            finish(dbapi_connection)
        finally:
            try:
                queue = dbapi_connection.info.get(WRITE_QUEUE)
            except NotImplementedError:  # the engine's first connection, before it is pooled
                queue = None
            if queue is not None:
                _leave(queue)

    return finished


def _open_write_queue(path: str, seconds: float) -> Callable[[Any, Any], None]:
    """Return a connect hook giving each connection its own open file of the writers' lock."""

    def opened(_dbapi_connection: Any, record: Any) -> None:
        # flock is held per open file, so threads of one process queue as processes do; a file
        # object, so a connection dropped without the pool's close event still closes it.
        descriptor = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT, 0o600)
        record.info[WRITE_QUEUE] = os.fdopen(descriptor, "r+b", buffering=0)
        record.info[LOCK_WAIT] = seconds

    return opened


def _close_write_queue(_dbapi_connection: Any, record: Any) -> None:
    """Close a connection's file of the writers' lock (which frees the lock if held)."""
    queue = record.info.pop(WRITE_QUEUE, None)
    if queue is not None:
        _leave(queue)
        queue.close()


@lru_cache(maxsize=16)
def get_engine(url: str, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS) -> Engine:
    """Return the process-wide engine for a database URL and connection deadlines."""
    if url.startswith("sqlite"):
        # SQLite's lock wait is its busy timeout (the driver's timeout sets it on connect).
        engine = create_engine(url, connect_args={"timeout": timeouts.lock or 30})
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            # Writers queue on a file lock beside the database, waking as soon as it is free.
            event.listen(engine, "connect", _open_write_queue(path, timeouts.lock or 30))
            event.listen(engine, "close", _close_write_queue)
            # Left after the dialect's own COMMIT or ROLLBACK: SQLAlchemy's events fire before.
            for name in ("do_commit", "do_rollback"):
                setattr(engine.dialect, name, _release_after(getattr(engine.dialect, name)))
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
