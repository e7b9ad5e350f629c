"""Re-aggregation jobs: ask for one, and read how far it got (for the API and the staff page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.changes import record_change
from outcomes.config import Settings
from outcomes.models import Outbox, User
from outcomes.queue import producer


def request_rerun(session: Session, settings: Settings, *, staff: User) -> Outbox:
    """Record a staff request for a new snapshot and send it to the workers."""
    row = record_change(
        session,
        settings,
        actor_id=staff.id,
        action="aggregation.request",
        object_type="outbox",
        topic="aggregate",
        reason="staff request",
    )
    assert row is not None  # a change with a topic always has its outbox row
    return row


def job_status(session: Session, settings: Settings, job: str) -> dict[str, Any] | None:
    """Return a job's state, percent, step and snapshot id, or None if there is no such job."""
    row = session.scalars(select(Outbox).where(Outbox.job_id == job)).first()
    if row is None:
        return None
    if row.snapshot_id is not None:
        return {"job_id": job, "state": "built", "percent": 100, "snapshot_id": row.snapshot_id}
    return {"job_id": job, "snapshot_id": None, **_task_progress(settings, job)}


def _task_progress(settings: Settings, job: str) -> dict[str, Any]:
    """Read a queued or running job's progress from the result backend."""
    try:
        result = producer(settings).AsyncResult(job)
        state, info = result.state, result.info
    except Exception:  # result backend unreachable: the outbox row still says it is pending
        return {"state": "queued", "percent": 0, "step": "waiting for the broker"}
    if state == "PROGRESS" and isinstance(info, dict):
        return {"state": "running", "percent": info.get("percent", 0), "step": info.get("step", "")}
    if state == "FAILURE":
        return {"state": "failed", "percent": 0, "step": str(info)[:200]}
    if state == "SUCCESS" and isinstance(info, dict):
        # Coalesced into a run that had already drained this row's request.
        return {"state": "built", "percent": 100, "snapshot_id": info.get("snapshot_id")}
    return {"state": "queued" if state == "PENDING" else "running", "percent": 0}
