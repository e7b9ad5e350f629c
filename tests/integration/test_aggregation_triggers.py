"""Triggers on real parts: a burst coalesces, a killed worker's run is redone, failures show."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from aggregator.build import build_snapshot
from aggregator.celery_app import create_celery
from outcomes.db import get_engine
from outcomes.models import Outbox, Snapshot
from outcomes.queue import AGGREGATE_TASK, enqueue, producer, request_aggregation
from tests.conftest import service_env, wait_for
from tests.factories import make_account, make_certificate, make_member


def published(db) -> list[Snapshot]:
    """Return the finished builds."""
    db.rollback()  # end the read transaction, so the worker's commits are visible
    return list(db.scalars(select(Snapshot).where(Snapshot.status == "built")))


def test_twenty_concurrent_triggers_coalesce_into_at_most_two_runs(worker_app, settings, db):
    from collector import create_app

    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    app = create_app(settings)
    start = threading.Barrier(20)
    answers: list[int] = []

    def trigger() -> None:
        client = app.test_client()
        start.wait()
        answers.append(client.post("/api/v1/aggregations", headers=staff).status_code)

    threads = [threading.Thread(target=trigger) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def all_processed() -> bool:
        db.rollback()
        pending = select(func.count()).where(Outbox.processed_at.is_(None))
        return db.scalar(select(func.count()).select_from(Outbox)) == 20 and not db.scalar(pending)

    assert answers == [202] * 20
    wait_for(all_processed)
    runs = published(db)
    assert 1 <= len(runs) <= 2
    assert set(db.scalars(select(Outbox.snapshot_id))) == {s.id for s in runs}


def start_worker(settings, **env: str) -> subprocess.Popen:
    """Start `outcomes serve worker` (what compose runs) as its own process group."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "outcomes"), "serve", "worker", "--workers", "1"],
        env={**service_env(settings), **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=60)


def test_a_worker_killed_mid_run_leaves_the_snapshot_and_the_run_is_redone(settings, db):
    # A queue of its own: the in-process test worker must not take this run.
    settings = settings.with_changes(queue_name=f"kill-{uuid.uuid4().hex[:8]}")
    make_certificate(db, member=make_member(db))
    db.commit()
    engine = get_engine(settings.database_url)
    before = build_snapshot(engine, trigger="before", force=True)
    make_certificate(db, member=make_member(db))
    row = request_aggregation(db, reason="killed run", requested_by=None)
    db.commit()
    timeout = {"AGGREGATION_VISIBILITY_TIMEOUT": "3"}
    slow = start_worker(settings, AGGREGATION_STEP_DELAY="3", **timeout)
    try:
        assert enqueue(settings, row)
        job = producer(settings).AsyncResult(row.job_id)
        wait_for(lambda: job.state == "PROGRESS")
    finally:
        stop(slow, signal.SIGKILL)
    killed_at = time.monotonic()

    [still] = published(db)
    assert (still.id, still.checksum) == (before.snapshot_id, db.get(Snapshot, still.id).checksum)
    assert db.scalar(select(Outbox.processed_at).where(Outbox.id == row.id)) is None

    # Redis hands the unacknowledged run to the next worker once the visibility timeout passed.
    time.sleep(max(0.0, killed_at + 4 - time.monotonic()))
    redo = start_worker(settings, **timeout)
    try:

        def processed():
            db.rollback()
            return db.scalar(select(Outbox.snapshot_id).where(Outbox.id == row.id))

        redone_id = wait_for(processed, timeout=90)
    finally:
        stop(redo)
    snapshots = {s.id: s for s in published(db)}
    assert set(snapshots) == {before.snapshot_id, redone_id}
    assert snapshots[redone_id].inputs["certificate"] == 2
    assert snapshots[before.snapshot_id].checksum == still.checksum
    failed = db.scalars(select(Snapshot).where(Snapshot.status == "failed")).all()
    assert [f.error for f in failed] == [
        f"job {row.job_id} stopped before publishing (worker lost); redone"
    ]


def test_the_aggregate_task_retries_database_outages_and_beat_rebuilds_nightly(settings):
    from aggregator.tasks import RetryableDatabaseError

    app = create_celery(settings)

    task = app.tasks[AGGREGATE_TASK]
    assert RetryableDatabaseError in task.autoretry_for and task.max_retries == 10
    nightly = app.conf.beat_schedule["nightly-rebuild"]
    assert nightly["task"] == AGGREGATE_TASK and nightly["kwargs"]["force"] is True
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
