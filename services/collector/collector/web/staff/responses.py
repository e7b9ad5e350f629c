"""Survey responses: list them, accept or reject one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from collector.context import db, settings
from collector.surveys import SurveyError, decide_response
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import Member, SurveyResponse, SurveyRevision


@bp.get("/responses")
@login_required("staff")
def responses() -> str:
    """List survey responses, those waiting for a decision first."""
    rows = db().execute(
        select(SurveyResponse, Member.name)
        .join(Member, Member.id == SurveyResponse.member_id)
        .where(SurveyResponse.status != "draft")
        .order_by((SurveyResponse.status != "submitted"), SurveyResponse.year.desc(), Member.name)
    )
    return render_template("staff/responses.html", rows=list(rows))


@bp.route("/responses/<int:response_id>", methods=["GET", "POST"])
@login_required("staff")
def response(response_id: int) -> str | Response | tuple[str, int]:
    """Show a response's latest answers; accept or reject it."""
    session = db()
    found = session.get(SurveyResponse, response_id)
    if found is None:
        abort(404, description="No such survey response.")
    error = None
    if request.method == "POST":
        try:
            decide_response(
                session,
                settings(),
                response=found,
                staff=web_user(),
                accept=request.form.get("decision") == "accept",
                reason=request.form.get("reason", ""),
            )
        except SurveyError as refusal:
            session.rollback()
            error = refusal.message
        else:
            flash(f"Response {found.status}.")
            return redirect(url_for("staff.responses"))
    latest = session.scalars(
        select(SurveyRevision).where(
            SurveyRevision.response_id == found.id,
            SurveyRevision.number == found.current_revision,
        )
    ).first()
    page = render_template(
        "staff/response.html",
        response=found,
        member=session.get(Member, found.member_id),
        revision=latest,
        error=error,
    )
    return (page, 409) if error else page
