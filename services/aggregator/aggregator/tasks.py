"""Thin Celery tasks with stable names: they take ids and call plain functions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task
from sqlalchemy.exc import OperationalError

from aggregator.build import build_snapshot, record_failure, release_if_due, wait_for_burst
from outcomes.db import get_engine, session_scope
from outcomes.models import utcnow
from outcomes.queue import AGGREGATE_TASK, SWEEP_TASK, pending_outbox

if TYPE_CHECKING:
    from aggregator.celery_app import OutcomesCelery

log = logging.getLogger(__name__)


def register(app: OutcomesCelery) -> None:
    """Register the aggregator's tasks on a Celery app."""
    settings = app.settings

    # shared=False: a task bound to this app's settings must not join other apps in the process.
    # A database that is briefly unreachable (restart, failover) is retried with backoff.
    @app.task(
        name=AGGREGATE_TASK,
        bind=True,
        shared=False,
        autoretry_for=(OperationalError,),
        retry_backoff=2,
        retry_backoff_max=60,
        max_retries=5,
    )
    def aggregate(
        self: Task, trigger: str = "outbox", requested_by: int | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Build a snapshot of everything pending in the outbox (or everything, if forced)."""

        def progress(percent: int, step: str) -> None:
            if self.request.id:
                try:
                    self.update_state(state="PROGRESS", meta={"percent": percent, "step": step})
                except Exception:
                    # Progress lives in Redis and is only for people watching. Without this, a
                    # Redis outage mid-run aborted the build and recorded a failed snapshot (F4).
                    log.warning("could not report progress of %s", self.request.id, exc_info=True)
            if settings.aggregation_step_delay:
                time.sleep(settings.aggregation_step_delay)

        engine = get_engine(settings.database_url)
        if (self.request.delivery_info or {}).get("redelivered"):
            # acks_late handed this run back: the delivery before it stopped without publishing.
            _record_failure(
                engine,
                trigger,
                requested_by,
                f"job {self.request.id} stopped before publishing (worker lost); redone",
            )
        if not force:
            wait_for_burst(engine, seconds=settings.aggregation_debounce_seconds)
        try:
            result = build_snapshot(
                engine,
                trigger=trigger,
                requested_by=requested_by,
                force=force,
                threshold=settings.suppression_threshold,
                progress=progress,
            )
        except OperationalError as error:
            if self.request.retries >= self.max_retries:
                _record_failure(engine, trigger, requested_by, repr(error))
            raise
        except Exception as error:
            _record_failure(engine, trigger, requested_by, repr(error))
            raise
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
        with session_scope(settings.database_url) as session:
            waiting = pending_outbox(session, older_than=cutoff)
        if waiting:
            log.info("outbox sweep: %d rows waiting, enqueueing a run", len(waiting))
            aggregate.apply_async(kwargs={"trigger": "outbox sweep"}, task_id=waiting[0])
        return len(waiting)


def _record_failure(engine: Any, trigger: str, requested_by: int | None, error: str) -> None:
    """Record a failed run; if even that fails (database down), the log must do."""
    try:
        record_failure(engine, trigger=trigger, requested_by=requested_by, error=error)
    except Exception:  # the original error matters more than this one
        log.exception("could not record the failed aggregation run: %s", error)
