"""Survey responses: list and filter them, accept them one by one or in bulk, return one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from collector.context import db, settings
from collector.review import (
    BULK_LIMIT,
    LAST_YEAR_FACTOR,
    PEER_MINIMUM,
    PEER_SCORE,
    ReviewFilterSchema,
    accept_many,
    answers_in_context,
    listed_responses,
)
from collector.surveys import SurveyError, decide_response
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import MEMBERSHIP_CLASSES, RESPONSE_STATUSES, Member, SurveyResponse

FILTERS = ("status", "year", "membership_class", "country", "flagged")


@bp.get("/responses")
@login_required("staff")
def responses() -> tuple[str, int]:
    """List survey responses by status, year, class, country and flags; waiting ones first."""
    asked = {k: request.args.get(k, "").strip() for k in FILTERS}
    try:
        filters = ReviewFilterSchema().load({k: v for k, v in asked.items() if v})
    except ValidationError as invalid:
        errors = invalid.normalized_messages()
        page = _responses_page(asked, rows=[], errors=errors)
        return page, 400
    return _responses_page(asked, rows=listed_responses(db(), filters), errors={}), 200


@bp.post("/responses/accept")
@login_required("staff")
def accept_responses() -> Response | tuple[str, int]:
    """Accept the chosen responses that are unflagged and unchanged since the list was shown."""
    wanted = []
    for value in request.form.getlist("response")[: BULK_LIMIT + 1]:
        response_id, _, revision = value.partition(":")
        if not (response_id.isdigit() and revision.isdigit()) or len(value) > 21:
            abort(400, description="Choose responses from the list.")
        wanted.append({"id": int(response_id), "revision": int(revision)})
    if not wanted or len(wanted) > BULK_LIMIT:
        flash(f"Choose between 1 and {BULK_LIMIT} responses to accept.")
        return redirect(url_for("staff.responses", status="submitted"))
    done = accept_many(db(), settings(), staff=web_user(), wanted=wanted)
    flash(f"Accepted {len(done['accepted'])} of {len(wanted)}.")
    for skipped in done["skipped"]:
        flash(f"Response {skipped['id']} not accepted: {skipped['reason']}")
    return redirect(url_for("staff.responses", status="submitted"))


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
    """Show a response's latest answers in context; accept it or return it for correction."""
    session = db()
    found = session.get(SurveyResponse, response_id)
    if found is None:
        abort(404, description="No such survey response.")
    error, status = None, 200
    if request.method == "POST":
        revision = request.form.get("revision", "")
        try:
            decide_response(
                session,
                settings(),
                response=found,
                staff=web_user(),
                accept=request.form.get("decision") == "accept",
                reason=request.form.get("reason", "")[:2000],
                revision=int(revision) if revision.isdigit() and len(revision) < 10 else None,
            )
        except SurveyError as refusal:
            session.rollback()
            error, status = refusal.message, refusal.status
        else:
            done = "accepted" if found.status == "accepted" else "returned for correction"
            flash(f"Response {done}.")
            return redirect(url_for("staff.responses"))
    page = render_template(
        "staff/response.html",
        response=found,
        member=session.get(Member, found.member_id),
        answers=answers_in_context(session, found),
        factor=LAST_YEAR_FACTOR,
        peer_score=PEER_SCORE,
        peer_minimum=PEER_MINIMUM,
        error=error,
    )
    return page, status
