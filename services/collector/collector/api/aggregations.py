"""Staff trigger re-aggregation and watch it reach a build (which staff then may release)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.jobs import job_status, request_rerun

blp = Blueprint("aggregations", __name__, description="Re-aggregation runs")


class AggregationJobSchema(Schema):
    """A re-aggregation request and how far it got."""

    job_id = fields.String()
    state = fields.String(metadata={"description": "queued, running, built or failed"})
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
        row = request_rerun(db(), settings(), staff=current_user())
        return {"job_id": row.job_id, "state": "queued", "percent": 0, "snapshot_id": None}


@blp.route("/<string:job>")
class AggregationJob(MethodView):
    """One re-aggregation request."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, AggregationJobSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, job: str) -> dict[str, Any]:
        """Return the state, progress and (once built) the snapshot of a job."""
        status = job_status(db(), settings(), job)
        if status is None:
            abort(404, message=f"No aggregation job {job!r}.")
        return status
