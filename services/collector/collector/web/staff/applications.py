"""Membership applications: list them, approve or reject one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from collector.applications import (
    ApplicationError,
    application_by_reference,
    approve_application,
    reject_application,
)
from collector.context import db, settings
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import Application


@bp.get("/applications")
@login_required("staff")
def applications() -> str:
    """List applications, undecided first."""
    rows = db().scalars(
        select(Application).order_by((Application.status != "received"), Application.id.desc())
    )
    return render_template("staff/applications.html", applications=list(rows))


@bp.route("/applications/<string:reference>", methods=["GET", "POST"])
@login_required("staff")
def application(reference: str) -> str | Response | tuple[str, int]:
    """Show one application; approve it (creating member and account) or reject it."""
    session = db()
    found = application_by_reference(session, reference)
    if found is None:
        abort(404, description=f"No application {reference}.")
    if request.method == "GET":
        return render_template("staff/application.html", application=found, approval=None)
    try:
        if request.form.get("decision") == "approve":
            approval = approve_application(session, settings(), found, staff=web_user())
            return render_template("staff/application.html", application=found, approval=approval)
        reject_application(
            session, settings(), found, staff=web_user(), reason=request.form.get("reason", "")
        )
    except ApplicationError as error:
        session.rollback()
        page = render_template(
            "staff/application.html", application=found, approval=None, error=str(error)
        )
        return page, 422
    flash(f"Application {reference} rejected.")
    return redirect(url_for("staff.applications"))
