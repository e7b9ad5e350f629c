"""Re-aggregation jobs, builds and releases: request a run, follow it, release, withdraw."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for

from collector.context import db, settings
from collector.jobs import job_status, request_rerun
from collector.releases import compare_with_release, list_builds, preview_link, release
from collector.releases import withdraw as withdraw_release
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import Snapshot
from outcomes.releases import NOTES_MAX, REASON_MAX, TITLE_MAX, ReleaseError


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
    finished = status["state"] in {"built", "failed"}
    return render_template("staff/aggregation.html", status=status, finished=finished)


@bp.get("/snapshots")
@login_required("staff")
def snapshots() -> str:
    """List the builds and releases, newest first."""
    return render_template("staff/snapshots.html", snapshots=list_builds(db()))


@bp.get("/builds/<int:build_id>")
@login_required("staff")
def build(build_id: int) -> str:
    """Show a build against the current release, its preview link and the release form."""
    session = db()
    found = session.get(Snapshot, build_id)
    if found is None:
        abort(404, description=f"There is no build {build_id}.")
    preview = None
    if found.status in ("built", "released"):
        preview = preview_link(session, settings(), build_id=build_id)
    return render_template(
        "staff/build.html",
        build=found,
        comparison=compare_with_release(session, found),
        preview=preview,
    )


@bp.post("/builds/<int:build_id>/release")
@login_required("staff")
def release_build(build_id: int) -> Response | tuple[str, int]:
    """Release a build with the title and notes from the form."""
    try:
        release(
            db(),
            settings(),
            staff=web_user(),
            build_id=build_id,
            title=request.form.get("title", "")[:TITLE_MAX],
            notes=request.form.get("notes", "")[:NOTES_MAX],
        )
    except ReleaseError as error:
        flash(error.message)
        return redirect(url_for("staff.build", build_id=build_id))
    flash(f"Build {build_id} released.")
    return redirect(url_for("staff.snapshots"))


@bp.post("/snapshots/<int:snapshot_id>/withdraw")
@login_required("staff")
def withdraw(snapshot_id: int) -> Response:
    """Withdraw a release from the public, with the public reason and any replacement."""
    replacement = request.form.get("replaced_by", "").strip()
    if replacement and not (replacement.isascii() and replacement.isdigit()):
        flash("The replacement must be a release number from the list.")
        return redirect(url_for("staff.snapshots"))
    try:
        withdraw_release(
            db(),
            settings(),
            staff=web_user(),
            release_id=snapshot_id,
            reason=request.form.get("reason", "")[:REASON_MAX],
            replaced_by=int(replacement[:10]) if replacement else None,
        )
    except ReleaseError as error:
        flash(error.message)
        return redirect(url_for("staff.snapshots"))
    flash(f"Release {snapshot_id} withdrawn.")
    return redirect(url_for("staff.snapshots"))
