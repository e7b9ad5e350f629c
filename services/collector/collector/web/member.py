"""The member's area: the annual survey, its history and receipt, and API tokens."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from collector.changes import record_change
from collector.context import db, settings
from collector.receipts import data_receipt
from collector.surveys import (
    SurveyError,
    current_response,
    open_survey_for,
    revision_history,
    save_survey,
)
from collector.web.forms import form_values, posted_values, survey_answers
from collector.web.session import login_required, refuse, web_user
from outcomes.accounts import create_token, revoke_token, user_tokens
from outcomes.campaigns import due_date
from outcomes.models import (
    Member,
    SurveyDefinition,
    SurveyResponse,
    SurveyRevision,
    utcnow,
)
from outcomes.queries import open_survey, survey_questions
from outcomes.repeats import Asked

bp = Blueprint("member", __name__, url_prefix="/member")
# How long a new API token works, in days ("" = until revoked).
TOKEN_LIFETIMES = ("30", "90", "365", "")


def _member() -> Member:
    member = db().get(Member, web_user().member_id)
    assert member is not None  # a member account always points at a member (create_user)
    return member


@bp.get("")
@login_required("member")
def index() -> str:
    """Show the member's surveys: open years and the member's own responses."""
    session = db()
    open_years = list(
        session.scalars(
            select(SurveyDefinition.year)
            .where(SurveyDefinition.status == "open")
            .distinct()
            .order_by(SurveyDefinition.year.desc())
        )
    )
    responses = {
        r.year: r
        for r in session.scalars(
            select(SurveyResponse).where(SurveyResponse.member_id == web_user().member_id)
        )
    }
    return render_template(
        "member/index.html", member=_member(), open_years=open_years, responses=responses
    )


@bp.route("/surveys/<int:year>", methods=["GET", "POST"])
@login_required("member")
def survey(year: int) -> str | Response | tuple[str, int]:
    """Show the survey form for a year; save a draft or submit through save_survey."""
    session = db()
    definition = open_survey(session, year=year)
    if definition is None:
        abort(404, description=f"No survey is open for reporting year {year}.")
    try:
        questions = list(open_survey_for(session, year, web_user().member_id).asked)
    except SurveyError as error:  # the survey closed since open_survey above
        abort(error.status, description=error.message)
    found = current_response(session, member_id=web_user().member_id, year=year)
    errors: dict = {}
    message = None
    if request.method == "POST":
        status = "draft" if request.form.get("action") == "draft" else "submitted"
        answers = survey_answers(questions, request.form)
        try:
            save_survey(
                session,
                settings(),
                user=web_user(),
                year=year,
                submission={"status": status, "answers": answers},
            )
        except SurveyError as error:
            session.rollback()
            errors = error.errors.get("json", {}).get("answers", {})
            message = error.message
        else:
            if status == "draft":
                flash("Draft saved. You can come back and submit it later.")
                return redirect(url_for("member.survey", year=year))
            flash("Survey submitted. Thank you.")
            return redirect(url_for("member.receipt", year=year))
        values = posted_values(questions, request.form)
    else:
        values = form_values(found["answers"]) if found else _defaults(questions)
    page = render_template(
        "member/survey.html",
        definition=definition,
        questions=questions,
        rules=[[q.key, q.required, q.logic, q.choices] for q in questions],
        languages=_languages(questions),
        response=found,
        due_on=due_date(session, member_id=web_user().member_id, year=year),
        values=values,
        errors=errors,
        message=message,
    )
    return (page, 422) if errors or message else page


def _defaults(questions: list[Asked]) -> dict[str, str | list[str]]:
    """Return the form's default answers (XLSForm's default column) for a response not begun."""
    found: dict[str, str | list[str]] = {}
    for question in questions:
        default = (question.logic or {}).get("default")
        if default:  # several choices are space-separated, as in XForms
            found[question.key] = default.split() if question.type == "select_many" else default
    return found


def _languages(questions: list[Asked]) -> list[str]:
    """Return the languages the questions are labelled in, the one shown by default first."""
    for question in questions:
        labels = (question.logic or {}).get("labels")
        if labels:
            return sorted(labels, key=lambda language: labels[language] != question.label)
    return []


@bp.get("/surveys/<int:year>/history")
@login_required("member")
def history(year: int) -> str:
    """Show every revision of the member's response for a year and what changed."""
    revisions = revision_history(db(), member_id=web_user().member_id, year=year)
    if not revisions:
        abort(404, description=f"You have no survey response for {year} yet.")
    accepted = db().scalar(
        select(SurveyResponse.accepted_revision).where(
            SurveyResponse.member_id == web_user().member_id, SurveyResponse.year == year
        )
    )
    return render_template("member/history.html", year=year, revisions=revisions, accepted=accepted)


@bp.get("/revisions/<int:revision_id>")
@login_required("member")
def revision(revision_id: int) -> str:
    """Show one revision of the member's own response."""
    session = db()
    row = session.execute(
        select(SurveyRevision, SurveyResponse)
        .join(SurveyResponse, SurveyResponse.id == SurveyRevision.response_id)
        .where(SurveyRevision.id == revision_id)
    ).first()
    if row is None or row.SurveyResponse.member_id != web_user().member_id:
        refuse(web_user(), object_type="survey_revision", object_id=revision_id)
    return render_template(
        "member/revision.html", revision=row.SurveyRevision, response=row.SurveyResponse
    )


@bp.get("/surveys/<int:year>/receipt")
@login_required("member")
def receipt(year: int) -> str:
    """Show which public indicators the member's answers feed and whether they are withheld."""
    session = db()
    found = current_response(session, member_id=web_user().member_id, year=year)
    if found is None or found["status"] == "draft":
        abort(404, description=f"You have not submitted a survey for {year} yet.")
    definition_id = session.scalar(
        select(SurveyResponse.definition_id).where(
            SurveyResponse.member_id == web_user().member_id, SurveyResponse.year == year
        )
    )
    questions = survey_questions(session, definition_id=definition_id)
    threshold = settings().suppression_threshold
    lines = data_receipt(session, year=year, questions=questions, threshold=threshold)
    return render_template(
        "member/receipt.html", year=year, response=found, lines=lines, threshold=threshold
    )


@bp.route("/tokens", methods=["GET", "POST"])
@login_required("member")
def tokens() -> str | tuple[str, int]:
    """List the member's API tokens and create a new one (shown once)."""
    session = db()
    new_token = None
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        days = request.form.get("expires_in_days", "")
        if not 1 <= len(name) <= 100:
            error = "Give the token a name of 1 to 100 characters (e.g. 'reporting script')."
        elif days not in TOKEN_LIFETIMES:
            error = "Choose how long the token works: 30, 90 or 365 days, or until revoked."
        else:
            expires = utcnow() + timedelta(days=int(days)) if days else None
            new_token = create_token(session, user=web_user(), name=name, expires_at=expires)
            record_change(
                session,
                settings(),
                actor_id=web_user().id,
                action="token.create",
                object_type="api_token",
                details={"name": name},
            )
    page = render_template(
        "member/tokens.html",
        tokens=user_tokens(session, user=web_user()),
        new_token=new_token,
        error=error,
    )
    return (page, 422) if error else page


@bp.post("/tokens/<int:token_id>/revoke")
@login_required("member")
def revoke(token_id: int) -> Response:
    """Revoke one of the member's own API tokens."""
    session = db()
    token = revoke_token(session, user=web_user(), token_id=token_id)
    if token is None:
        refuse(web_user(), object_type="api_token", object_id=token_id)
    record_change(
        session,
        settings(),
        actor_id=web_user().id,
        action="token.revoke",
        object_type="api_token",
        object_id=token_id,
    )
    flash(f"Token '{token.name}' revoked.")
    return redirect(url_for("member.tokens"))
