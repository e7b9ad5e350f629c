"""SQLite writers queue on a file lock beside the database, held from BEGIN to COMMIT/ROLLBACK."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from outcomes.config import DatabaseTimeouts
from outcomes.db import DEFAULT_TIMEOUTS, get_engine, writer_engine

IMPATIENT = DatabaseTimeouts(lock=0.2)


@pytest.fixture
def url(tmp_path):
    engine = get_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield f"sqlite:///{tmp_path / 'w.db'}"
    engine.dispose()
    for timeouts in (DEFAULT_TIMEOUTS, IMPATIENT):
        get_engine(f"sqlite:///{tmp_path / 'w.db'}", timeouts).dispose()


def queue_is_free(url: str) -> bool:
    """Tell whether another open file of the writers' lock could take it now."""
    descriptor = os.open(f"{url.removeprefix('sqlite:///')}-writers", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)


def test_a_writer_holds_the_queue_until_it_commits_or_rolls_back_and_a_reader_never(url):
    with writer_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        during = queue_is_free(url)
    after_commit = queue_is_free(url)
    with pytest.raises(RuntimeError), writer_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("rolled back")
    after_rollback = queue_is_free(url)
    with get_engine(url).connect() as conn:
        rows = conn.scalar(text("SELECT count(*) FROM t"))
        reading = queue_is_free(url)

    assert (during, after_commit, after_rollback, reading, rows) == (False, True, True, True, 1)


def test_a_second_writer_waits_in_the_queue_and_begins_once_the_first_commits(url):
    first_in, release = threading.Event(), threading.Event()
    order: list[str] = []

    def sent(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("BEGIN IMMEDIATE") and first_in.is_set():
            order.append("second begins")  # SQLite's own wait would begin, then block

    def first() -> None:
        with writer_engine(url).begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            first_in.set()
            release.wait(10)
            order.append("first commits")

    writers = get_engine(url, DEFAULT_TIMEOUTS)  # the engine writer_engine(url) runs on
    event.listen(writers, "before_cursor_execute", sent)
    holder = threading.Thread(target=first)
    holder.start()
    first_in.wait(10)
    second = threading.Thread(target=lambda: _write(url, order))
    second.start()
    second.join(0.3)
    waiting = second.is_alive()
    release.set()
    holder.join(10)
    second.join(10)
    event.remove(writers, "before_cursor_execute", sent)

    assert waiting and order == ["first commits", "second begins", "second wrote"]


def _write(url: str, order: list[str]) -> None:
    with writer_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        order.append("second wrote")


def test_a_writer_gives_up_after_the_lock_timeout_with_sqlites_own_error(url):
    impatient = writer_engine(url, IMPATIENT)
    with writer_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="database is locked"), impatient.begin() as c:
            c.execute(text("INSERT INTO t VALUES (2)"))
    # Its connection keeps waiting the full timeout next time, and the queue is free again.
    with impatient.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (3)"))
        timeout = conn.scalar(text("PRAGMA busy_timeout"))
    assert queue_is_free(url) and timeout == 200


def test_a_writer_outside_the_queue_still_excludes_a_queued_one(url, tmp_path):
    # A migration or another tool writes with SQLite's lock only: the queue is free, SQLite's
    # lock is not, and the queued writer gets SQLite's own answer.
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            writer_engine(url, IMPATIENT).begin() as conn,
        ):
            conn.execute(text("INSERT INTO t VALUES (1)"))
        free = queue_is_free(url)
    finally:
        other.rollback()
        other.close()
    assert free
