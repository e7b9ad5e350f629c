"""Celery settings shared by producer and workers, and enqueueing aggregator work by task name."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.config import Settings
from outcomes.models import Outbox

log = logging.getLogger(__name__)

AGGREGATE_TASK = "outcomes.aggregate"
SWEEP_TASK = "outcomes.sweep_outbox"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration every process of the system uses."""
    transport = {"visibility_timeout": settings.aggregation_visibility_timeout}
    # Every Redis call has a deadline: without one a publish or progress report waits forever on a
    # connection the network dropped silently (kombu's redis transport docs, "socket_timeout").
    deadlines = {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "socket_keepalive": True,
    }
    redis_broker = settings.broker_url.startswith("redis://")
    return {
        "broker_url": settings.broker_url,
        # A worker cut off from Redis while it acknowledges a run must take new work once the
        # network heals (outcomes.broker).
        "broker_transport": "outcomes.broker:Transport" if redis_broker else None,
        "result_backend": settings.backend_url,
        "task_default_queue": settings.queue_name,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_extended": True,
        "result_expires": 7 * 24 * 3600,
        # A run is acknowledged only once it finished, and a worker that dies mid-run hands
        # it back: https://docs.celeryq.dev/en/stable/userguide/tasks.html#Task.acks_late
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        # Redis redelivers an unacknowledged run after this many seconds; it must exceed the
        # longest aggregation, and both transports need it (celery issues #9339, #7651).
        "broker_transport_options": {**transport, **deadlines},
        # The result backend retries a lost connection 20 times by default (minutes when cut off).
        "result_backend_transport_options": {**transport, "retry_policy": {"max_retries": 2}},
        "redis_socket_connect_timeout": settings.redis_connect_timeout,
        "redis_socket_timeout": settings.redis_socket_timeout,
        "redis_socket_keepalive": True,
        "broker_connection_timeout": settings.redis_connect_timeout,
        "broker_connection_retry_on_startup": True,
        # A broker outage must not hang a request: the outbox row keeps the work safe.
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
    }


@lru_cache(maxsize=8)
def producer(settings: Settings) -> Celery:
    """Return a Celery client that reads task state by job id (it imports no aggregator code)."""
    app = Celery("outcomes-producer")
    app.conf.update(celery_config(settings))
    return app


class _Sender:
    """A send-only Celery client that never keeps a request waiting on a slow or failing broker."""

    # How long a request waits for its send; a send still going on after this goes on alone.
    WAIT = 1.0

    def __init__(self, settings: Settings) -> None:
        self.app = Celery("outcomes-sender")
        # No result backend: with Redis's, every send_task first subscribes to the run's result
        # channel (one more network call per request, and a subscription kept for ever).
        self.app.conf.update(celery_config(settings), result_backend=None)
        # One thread sends, so a request waits WAIT at most, and while a send hangs or after one
        # failed, requests skip the broker for an outbox sweep interval: the sweep sends their rows.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enqueue")
        self.pause = float(settings.outbox_sweep_seconds)
        self.paused_until = 0.0
        self.slow: Future[bool] | None = None

    def send(self, job_id: str, kwargs: dict[str, Any], task: str = AGGREGATE_TASK) -> bool:
        """Send a task; False if it was skipped or failed, True if it was sent or is being sent."""
        if time.monotonic() < self.paused_until or (self.slow and not self.slow.done()):
            return False
        future = self.pool.submit(self._send, job_id, kwargs, task)
        try:
            return future.result(timeout=self.WAIT)
        except TimeoutError:  # it goes on alone; if it fails, the sweep sends the row
            self.slow = future
            return True

    def _send(self, job_id: str, kwargs: dict[str, Any], task: str) -> bool:
        try:
            self.app.send_task(task, kwargs=kwargs, task_id=job_id)
        except Exception:  # any broker failure: the row stays pending and the sweep picks it up
            self.paused_until = time.monotonic() + self.pause
            log.warning("could not enqueue job %s; the sweep will retry", job_id, exc_info=True)
            return False
        return True


@lru_cache(maxsize=8)
def _sender(settings: Settings) -> _Sender:
    """Return the process's send-only client for these settings."""
    return _Sender(settings)


def request_aggregation(
    session: Session,
    *,
    reason: str,
    requested_by: int | None,
    topic: str = "aggregate",
    year: int | None = None,
) -> Outbox:
    """Add an outbox row in the caller's transaction so the request commits with its data."""
    # topic: what changed (outcomes.catalogue.TOPICS) so a run may recompute only what reads it;
    # year: the reporting year of a survey change, so a run may recompute only that year.
    row = Outbox(reason=reason, requested_by=requested_by, topic=topic, year=year)
    session.add(row)
    session.flush()
    return row


def enqueue(settings: Settings, row: Outbox) -> bool:
    """Send the run for a committed outbox row; the periodic sweep retries if the broker is down."""
    kwargs = {"trigger": row.reason, "requested_by": row.requested_by}
    return _sender(settings).send(row.job_id, kwargs)


def send_task(settings: Settings, task: str, kwargs: dict[str, Any], job_id: str) -> bool:
    """Send any task without keeping a request waiting; its row's sweep covers a failed send."""
    return _sender(settings).send(job_id, kwargs, task)


def pending_outbox(session: Session, *, older_than: datetime | None = None) -> list[str]:
    """Return the job ids of outbox rows no snapshot has processed yet, oldest first."""
    query = select(Outbox.job_id).where(Outbox.processed_at.is_(None)).order_by(Outbox.id)
    if older_than is not None:
        query = query.where(Outbox.created_at <= older_than)
    return list(session.scalars(query))
