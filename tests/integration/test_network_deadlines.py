"""Deadlines on real parts: a held publish lock, a session idle in transaction, a silent Redis."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection
from kombu.simple import SimpleQueue
from sqlalchemy import select, text

from aggregator.build import build_snapshot, publisher
from aggregator.progress import ProgressReporter
from outcomes.config import DatabaseTimeouts
from outcomes.db import get_engine, is_retryable
from outcomes.models import Outbox, Snapshot
from outcomes.queue import enqueue, producer, request_aggregation
from outcomes.runner import start_embedded_redis
from tests.conftest import wait_for
from tests.factories import make_certificate, make_member
from tests.integration.test_aggregation_triggers import start_worker, stop


@pytest.fixture
def silent_redis() -> Iterator[tuple[str, list[socket.socket]]]:
    """Yield a Redis URL whose server accepts connections and never answers, and those accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:  # the listener was closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0", accepted
    listener.close()
    for connection in accepted:
        connection.close()


def built(db) -> list[Snapshot]:
    db.rollback()  # end the read transaction, so other sessions' commits are visible
    return list(db.scalars(select(Snapshot).where(Snapshot.status == "built")))


def test_a_publisher_gives_up_waiting_for_a_held_lock_with_an_error_worth_retrying(settings, db):
    make_certificate(db, member=make_member(db))
    db.commit()
    waiting = get_engine(settings.database_url, DatabaseTimeouts(lock=0.5))
    try:
        holder = publisher(get_engine(settings.database_url))
        with holder, pytest.raises(Exception) as gave_up:
            build_snapshot(waiting, trigger="waits", force=True)
        assert is_retryable(gave_up.value), repr(gave_up.value)
        assert built(db) == []
        # Once the holder is done, the same publisher gets the lock.
        assert build_snapshot(waiting, trigger="waits", force=True).built
    finally:
        waiting.dispose()
    assert len(built(db)) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_publisher_plans_for_index_lookups_without_jit_in_its_transaction_only(settings):
    engine = get_engine(settings.database_url)

    def planner(conn) -> list[str]:
        return [conn.scalar(text(f"SHOW {name}")) for name in ("random_page_cost", "jit")]

    with engine.connect() as conn:
        before = planner(conn)
    with publisher(engine) as conn:
        inside = planner(conn)
    with engine.connect() as conn:
        after = planner(conn)

    assert inside == ["1.1", "off"]
    assert after == before  # the server's own settings for every other connection


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_publisher_idle_in_its_transaction_loses_the_lock_and_its_error_is_retried(settings):
    # What a worker cut off from PostgreSQL while holding the lock looks like to the server.
    cut_off = get_engine(settings.database_url, DatabaseTimeouts(idle_in_transaction=0.5))
    waiting = get_engine(settings.database_url, DatabaseTimeouts(lock=30))
    try:
        with pytest.raises(Exception) as ended, publisher(cut_off) as conn:
            conn.execute(text("SELECT 1"))  # the transaction begins
            # The server ends the idle session and with it the lock, so the next publisher
            # gets it while this one still believes it holds it.
            assert build_snapshot(waiting, trigger="next", force=True).built
            conn.execute(text("SELECT 1"))
        assert is_retryable(ended.value), repr(ended.value)
        assert getattr(ended.value.__cause__ or ended.value, "sqlstate", None) in {None, "25P03"}
    finally:
        cut_off.dispose()
        waiting.dispose()


def test_a_run_that_cannot_get_the_lock_is_retried_and_not_recorded_as_failed(settings, db):
    make_certificate(db, member=make_member(db))
    row = request_aggregation(db, reason="lock busy", requested_by=None)
    db.commit()
    # A worker of its own, on a queue of its own, that waits only briefly for the lock.
    quick = settings.with_changes(queue_name=f"lock-{uuid.uuid4().hex[:8]}")
    worker = start_worker(quick, AGGREGATOR_LOCK_TIMEOUT="0.5")
    try:
        with publisher(get_engine(settings.database_url)):
            assert enqueue(quick, row)
            job = producer(quick).AsyncResult(row.job_id)
            wait_for(lambda: job.state == "RETRY", timeout=90)

        def processed():
            db.rollback()
            return db.scalar(select(Outbox.snapshot_id).where(Outbox.id == row.id))

        assert wait_for(processed, timeout=120)
    finally:
        stop(worker)
    db.rollback()
    assert db.scalars(select(Snapshot.error).where(Snapshot.status == "failed")).all() == []


def test_progress_sent_to_a_redis_that_never_answers_does_not_hold_up_the_run(
    settings, db, silent_redis
):
    url, _accepted = silent_redis
    silent = settings.with_changes(
        broker_url=url, redis_connect_timeout=0.5, redis_socket_timeout=0.5
    )
    backend = producer(silent).backend
    senders: list[threading.Thread] = []

    def send(percent: int, step: str) -> None:
        senders.append(threading.current_thread())
        backend.store_result("progress-test", {"percent": percent, "step": step}, "PROGRESS")

    make_certificate(db, member=make_member(db))
    db.commit()
    reporter = ProgressReporter(send, deadline=60)
    result = build_snapshot(
        get_engine(settings.database_url), trigger="silent redis", force=True, progress=reporter
    )
    reporter.close()
    assert result.built
    assert [s.id for s in built(db)] == [result.snapshot_id]
    # Reports were tried, and never by the thread that held the publish lock.
    assert senders and threading.current_thread() not in senders


def test_a_send_to_a_broker_that_never_answers_gives_up_and_the_next_ones_skip_it(
    settings, db, silent_redis
):
    url, accepted = silent_redis
    silent = settings.with_changes(
        broker_url=url, redis_connect_timeout=0.5, redis_socket_timeout=0.5
    )
    rows = [request_aggregation(db, reason=f"send {n}", requested_by=None) for n in range(3)]
    db.commit()
    enqueue(silent, rows[0])  # waits a moment at most, the send going on alone
    wait_for(lambda: accepted)
    # Later requests do not wait on the broker again (a send queued behind the hanging one would
    # answer True, "being sent"); the outbox sweep sends their rows.
    assert [enqueue(silent, row) for row in rows[1:]] == [False, False]
    db.rollback()
    assert db.scalar(select(Outbox.processed_at).where(Outbox.id == rows[0].id)) is None


def test_a_send_subscribes_to_no_result(settings, db):
    row = request_aggregation(db, reason="fire and forget", requested_by=None)
    db.commit()
    # A queue no worker reads, emptied afterwards: the run itself is not this test's business.
    unread = settings.with_changes(queue_name=f"unread-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(settings.broker_url, socket_timeout=5)
    channel = f"celery-task-meta-{row.job_id}"
    try:
        assert enqueue(unread, row)
        assert client.llen(unread.queue_name) == 1
        assert client.pubsub_numsub(channel) == [(channel.encode(), 0)]
    finally:
        client.delete(unread.queue_name)


def test_a_worker_whose_ack_does_not_reach_redis_takes_new_work(tmp_path):
    # A Redis of its own, to take away between fetching a message and acknowledging it.
    server, url = start_embedded_redis(tmp_path)
    try:
        options = {"socket_timeout": 1, "socket_connect_timeout": 1}
        transport = "outcomes.broker:Transport"
        with Connection(url, transport=transport, transport_options=options) as conn:
            channel = conn.channel()
            channel.basic_qos(0, 1, False)  # prefetch 1, as the workers run
            queue = SimpleQueue(channel, "acks")
            queue.put({"run": 1})
            message = queue.get(timeout=5)
            assert not channel.qos.can_consume()
            server.terminate()
            server.wait()
            with pytest.raises(redis.ConnectionError):
                message.ack()
            assert channel.qos.can_consume()
    finally:
        server.terminate()
        server.wait()
