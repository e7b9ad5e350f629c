"""Re-aggregation jobs and snapshots: request a run, follow it, withdraw a snapshot."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from collector.changes import record_change
from collector.context import db, settings
from collector.jobs import job_status, request_rerun
from collector.web.session import login_required, web_user
from collector.web.staff.common import PAGE_SIZE, bp
from outcomes.models import Snapshot


@bp.post("/aggregations")
@login_required("staff")
def aggregate() -> Response:
    """Ask for a new snapshot and go to the page that follows its progress."""
    row = request_rerun(db(), settings(), staff=web_user())
    return redirect(url_for("staff.aggregation", job=row.job_id))


@bp.get("/aggregations/<string:job>")
@login_required("staff")
def aggregation(job: str) -> str:
    """Show a job's progress; the page reloads itself until the job has finished."""
    status = job_status(db(), settings(), job)
    if status is None:
        abort(404, description=f"No aggregation job {job}.")
    finished = status["state"] in {"published", "failed"}
    return render_template("staff/aggregation.html", status=status, finished=finished)


@bp.get("/snapshots")
@login_required("staff")
def snapshots() -> str:
    """List every snapshot, newest first."""
    rows = db().scalars(select(Snapshot).order_by(Snapshot.id.desc()).limit(PAGE_SIZE))
    return render_template("staff/snapshots.html", snapshots=list(rows))


@bp.post("/snapshots/<int:snapshot_id>/withdraw")
@login_required("staff")
def withdraw(snapshot_id: int) -> Response | tuple[str, int]:
    """Withdraw a published snapshot from the public, with the reason."""
    session = db()
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None:
        abort(404, description="No such snapshot.")
    reason = request.form.get("reason", "").strip()
    if snapshot.status != "published" or not reason:
        flash(
            "Give a reason to withdraw a snapshot."
            if snapshot.status == "published"
            else f"Snapshot {snapshot_id} is {snapshot.status}; only a published one can."
        )
        return redirect(url_for("staff.snapshots"))
    snapshot.status = "withdrawn"
    snapshot.withdrawn_reason = reason[:2000]
    record_change(
        session,
        settings(),
        actor_id=web_user().id,
        action="snapshot.withdraw",
        object_type="snapshot",
        object_id=snapshot_id,
        details={"reason": reason[:2000]},
    )
    flash(f"Snapshot {snapshot_id} withdrawn.")
    return redirect(url_for("staff.snapshots"))
