"""Thin Celery tasks with stable names: they take ids and call plain functions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task

from aggregator.build import build_snapshot, record_failure, release_if_due, wait_for_burst
from aggregator.progress import ProgressReporter
from outcomes.campaigns import send_due_reminders
from outcomes.db import get_engine, is_retryable, session_factory, session_scope
from outcomes.mail import (
    REMIND_TASK,
    SEND_MAIL_TASK,
    SWEEP_MAIL_TASK,
    MailDeferred,
    deliver,
    pending_mail,
)
from outcomes.models import utcnow
from outcomes.queue import AGGREGATE_TASK, SWEEP_TASK, pending_outbox

if TYPE_CHECKING:
    from aggregator.celery_app import OutcomesCelery

log = logging.getLogger(__name__)


class RetryableDatabaseError(Exception):
    """A run stopped by a database error that says "try again": not a failed run."""


def register(app: OutcomesCelery) -> None:
    """Register the aggregator's tasks on a Celery app."""
    settings = app.settings

    # The aggregator's sessions end soon after it is cut off and wait a bounded time for locks.
    timeouts = settings.aggregator_database_timeouts

    # shared=False: a task bound to this app's settings must not join other apps in the process.
    # A database that is briefly unreachable (restart, failover, a cut network), a publish lock
    # not granted in time or a session ended by the server are retried with backoff; once the
    # retries run out, the outbox sweep sends the same rows again.
    @app.task(
        name=AGGREGATE_TASK,
        bind=True,
        shared=False,
        autoretry_for=(RetryableDatabaseError,),
        retry_backoff=2,
        retry_backoff_max=30,
        max_retries=10,
    )
    def aggregate(
        self: Task, trigger: str = "outbox", requested_by: int | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Build a snapshot of everything pending in the outbox (or everything, if forced)."""
        job, request, backend = self.request.id, self.request, self.backend

        def send(percent: int, step: str) -> None:
            meta = {"percent": percent, "step": step}
            # Not retried: a later report replaces it, and a late one must not follow the result.
            backend.store_result(job, meta, "PROGRESS", request=request, max_retries=0)

        reporter = ProgressReporter(send, deadline=settings.redis_socket_timeout)

        def progress(percent: int, step: str) -> None:
            if job:
                reporter(percent, step)
            if settings.aggregation_step_delay:
                time.sleep(settings.aggregation_step_delay)

        engine = get_engine(settings.database_url, timeouts)
        try:
            if (self.request.delivery_info or {}).get("redelivered"):
                # acks_late handed this run back: the delivery before it stopped unpublished.
                _record_failure(
                    engine,
                    trigger,
                    requested_by,
                    f"job {self.request.id} stopped before publishing (worker lost); redone",
                )
            if not force:
                wait_for_burst(engine, seconds=settings.aggregation_debounce_seconds)
            result = build_snapshot(
                engine,
                trigger=trigger,
                requested_by=requested_by,
                force=force,
                threshold=settings.suppression_threshold,
                progress=progress,
            )
        except Exception as error:
            if is_retryable(error):  # not a failed run: retried, and the sweep sends it again
                raise RetryableDatabaseError(repr(error)) from error
            _record_failure(engine, trigger, requested_by, repr(error))
            raise
        finally:
            reporter.close()
        if result.built and result.snapshot_id is not None:
            release_if_due(
                engine, snapshot_id=result.snapshot_id, auto_release=settings.auto_release
            )
        return {
            "snapshot_id": result.snapshot_id,
            "built": result.built,
            "outbox_rows": result.outbox_rows,
            "cells": result.cells,
        }

    @app.task(name=SWEEP_TASK, shared=False)
    def sweep_outbox() -> int:
        """Enqueue a run for outbox rows that waited longer than one sweep interval."""
        cutoff = utcnow() - timedelta(seconds=settings.outbox_sweep_seconds)
        with session_scope(settings.database_url, timeouts=timeouts) as session:
            waiting = pending_outbox(session, older_than=cutoff)
        if waiting:
            log.info("outbox sweep: %d rows waiting, enqueueing a run", len(waiting))
            aggregate.apply_async(kwargs={"trigger": "outbox sweep"}, task_id=waiting[0])
        return len(waiting)

    # A server that is down or answers 4xx is tried again with backoff; once the retries run out
    # the row is still pending and the mail sweep sends it again. A 5xx answer is final.
    @app.task(
        name=SEND_MAIL_TASK,
        shared=False,
        autoretry_for=(MailDeferred,),
        retry_backoff=2,
        retry_backoff_max=300,
        max_retries=8,
    )
    def send_mail(mail_id: int) -> str:
        """Send one mail row (at most once: the row is claimed by a conditional update)."""
        # deliver commits its claim and its outcome itself, so a plain session, not a scope.
        with session_factory(settings.database_url, timeouts=timeouts)() as session:
            return deliver(session, settings, mail_id)

    @app.task(name=SWEEP_MAIL_TASK, shared=False)
    def sweep_mail() -> int:
        """Send mail rows that waited longer than one sweep interval (a lost or failed send)."""
        cutoff = utcnow() - timedelta(seconds=settings.outbox_sweep_seconds)
        with session_scope(settings.database_url, timeouts=timeouts) as session:
            waiting = pending_mail(session, older_than=cutoff)
        for mail_id in waiting:
            send_mail.apply_async(kwargs={"mail_id": mail_id})
        return len(waiting)

    @app.task(name=REMIND_TASK, shared=False)
    def send_reminders() -> int:
        """Queue and send the campaign reminders due today (each member once per schedule day)."""
        with session_factory(settings.database_url, timeouts=timeouts)() as session:
            mail_ids = send_due_reminders(session, today=utcnow().date())
        for mail_id in mail_ids:
            send_mail.apply_async(kwargs={"mail_id": mail_id})
        return len(mail_ids)


def _record_failure(engine: Any, trigger: str, requested_by: int | None, error: str) -> None:
    """Record a failed run; if even that fails (database down), the log must do."""
    try:
        record_failure(engine, trigger=trigger, requested_by=requested_by, error=error)
    except Exception:  # the original error matters more than this one
        log.exception("could not record the failed aggregation run: %s", error)
