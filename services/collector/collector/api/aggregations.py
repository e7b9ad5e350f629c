"""Staff trigger re-aggregation and watch it reach a published snapshot."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from outcomes.models import AuditLog, Outbox
from outcomes.queue import enqueue, producer, request_aggregation

blp = Blueprint("aggregations", __name__, description="Re-aggregation runs")


class AggregationJobSchema(Schema):
    """A re-aggregation request and how far it got."""

    job_id = fields.String()
    state = fields.String(metadata={"description": "queued, running, published or failed"})
    percent = fields.Integer()
    step = fields.String()
    snapshot_id = fields.Integer(allow_none=True)


@blp.route("")
class Aggregations(MethodView):
    """Ask for a new snapshot."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(202, AggregationJobSchema)
    @document_errors(blp, 401, 403)
    def post(self) -> dict[str, Any]:
        """Queue a re-aggregation; answers at once with a job id to poll."""
        session = db()
        user = current_user()
        row = request_aggregation(session, reason="staff request", requested_by=user.id)
        session.add(
            AuditLog(
                actor_id=user.id,
                action="aggregation.request",
                object_type="outbox",
                object_id=str(row.id),
            )
        )
        session.commit()
        enqueue(settings(), row)
        return {"job_id": row.job_id, "state": "queued", "percent": 0, "snapshot_id": None}


@blp.route("/<string:job>")
class AggregationJob(MethodView):
    """One re-aggregation request."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, AggregationJobSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, job: str) -> dict[str, Any]:
        """Return the state, progress and (once published) the snapshot of a job."""
        row = db().scalars(select(Outbox).where(Outbox.job_id == job)).first()
        if row is None:
            abort(404, message=f"No aggregation job {job!r}.")
        if row.snapshot_id is not None:
            return {
                "job_id": job,
                "state": "published",
                "percent": 100,
                "snapshot_id": row.snapshot_id,
            }
        return {"job_id": job, **_task_progress(job)}


def _task_progress(job: str) -> dict[str, Any]:
    """Read a queued or running job's progress from the result backend."""
    try:
        result = producer(settings()).AsyncResult(job)
        state, info = result.state, result.info
    except Exception:  # result backend unreachable: the outbox row still says it is pending
        return {"state": "queued", "percent": 0, "step": "waiting for the broker"}
    if state == "PROGRESS" and isinstance(info, dict):
        return {"state": "running", "percent": info.get("percent", 0), "step": info.get("step", "")}
    if state == "FAILURE":
        return {"state": "failed", "percent": 0, "step": str(info)[:200]}
    if state == "SUCCESS" and isinstance(info, dict):
        # Coalesced into a run that had already drained this row's request.
        return {"state": "published", "percent": 100, "snapshot_id": info.get("snapshot_id")}
    return {"state": "queued" if state == "PENDING" else "running", "percent": 0}
