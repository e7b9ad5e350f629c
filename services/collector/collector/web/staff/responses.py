"""Survey responses: list them, accept or reject one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from collector.context import db, settings
from collector.review import (
    OUTLIER_FACTOR,
    ReviewFilterSchema,
    answers_in_context,
    listed_responses,
)
from collector.surveys import SurveyError, decide_response
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import MEMBERSHIP_CLASSES, RESPONSE_STATUSES, Member, SurveyResponse


@bp.get("/responses")
@login_required("staff")
def responses() -> tuple[str, int]:
    """List survey responses by status, year, class and country; waiting ones first."""
    names = ("status", "year", "membership_class", "country")
    asked = {k: request.args.get(k, "").strip() for k in names}
    try:
        filters = ReviewFilterSchema().load({k: v for k, v in asked.items() if v})
    except ValidationError as invalid:
        errors = invalid.normalized_messages()
        page = _responses_page(asked, rows=[], errors=errors)
        return page, 400
    return _responses_page(asked, rows=listed_responses(db(), filters), errors={}), 200


def _responses_page(asked: dict[str, str], **context: object) -> str:
    return render_template(
        "staff/responses.html",
        asked=asked,
        statuses=[s for s in RESPONSE_STATUSES if s != "draft"],
        classes=MEMBERSHIP_CLASSES,
        **context,
    )


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
    page = render_template(
        "staff/response.html",
        response=found,
        member=session.get(Member, found.member_id),
        answers=answers_in_context(session, found),
        factor=OUTLIER_FACTOR,
        error=error,
    )
    return (page, 409) if error else page
