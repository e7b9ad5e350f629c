"""Thin Celery tasks with stable names: they take ids and call plain functions."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task

from aggregator.build import build_snapshot, record_failure
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
    @app.task(name=AGGREGATE_TASK, bind=True, shared=False)
    def aggregate(
        self: Task, trigger: str = "outbox", requested_by: int | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Publish a snapshot of everything pending in the outbox (or everything, if forced)."""

        def progress(percent: int, step: str) -> None:
            if not self.request.id:
                return
            try:
                self.update_state(state="PROGRESS", meta={"percent": percent, "step": step})
            except Exception:
                # Progress lives in Redis and is only for people watching. Without this, a Redis
                # outage mid-run aborted the build and recorded a failed snapshot (fault suite F4).
                log.warning("could not report progress of %s", self.request.id, exc_info=True)

        engine = get_engine(settings.database_url)
        try:
            result = build_snapshot(
                engine,
                trigger=trigger,
                requested_by=requested_by,
                force=force,
                threshold=settings.suppression_threshold,
                progress=progress,
            )
        except Exception as error:
            record_failure(engine, trigger=trigger, requested_by=requested_by, error=repr(error))
            raise
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
