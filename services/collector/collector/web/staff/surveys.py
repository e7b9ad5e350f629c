"""Survey definitions and their questions."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from collector.context import db, settings
from collector.definitions import (
    EDITABLE_TYPES,
    DefinitionError,
    copy_previous_year,
    create_definition,
    question_schema,
    remove_question,
    save_question,
    set_status,
)
from collector.web.forms import question_data, question_values
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from collector.xlsform import LIMITS, ImportRefused, parse_xlsform
from outcomes.models import AGGREGATIONS, SurveyDefinition, SurveyQuestion
from outcomes.queries import survey_questions


@bp.get("/surveys")
@login_required("staff")
def surveys() -> str:
    """List survey definitions with their status and the actions staff can take."""
    return _surveys_page()


@bp.post("/surveys/import")
@login_required("staff")
def survey_import() -> str | tuple[str, int]:
    """Create a draft definition from an XLSForm workbook and show the import report."""
    session = db()
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise DefinitionError("Choose an XLSForm workbook (.xlsx) to upload.")
        report = parse_xlsform(upload.read(), upload.filename)
        definition = create_definition(
            session,
            settings(),
            year=_year(request.form.get("year")),
            title=request.form.get("title", ""),
            questions=report.questions,
            staff=web_user(),
            source=f"XLSForm {upload.filename}"[:100],
        )
    except ImportRefused as refusal:
        session.rollback()
        return _surveys_page(error=str(refusal), refusal=refusal.lines()), 422
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 422
    return _surveys_page(report=report, created=definition)


@bp.post("/surveys/copy")
@login_required("staff")
def survey_copy() -> Response | tuple[str, int]:
    """Start a year's survey from the previous year's."""
    session = db()
    try:
        definition = copy_previous_year(
            session, settings(), year=_year(request.form.get("year")), staff=web_user()
        )
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 422
    flash(f"Draft {definition.title} (version {definition.version}) created.")
    return redirect(url_for("staff.surveys"))


@bp.post("/surveys/<int:definition_id>/status")
@login_required("staff")
def survey_status(definition_id: int) -> Response | tuple[str, int]:
    """Open or close a survey definition."""
    session = db()
    definition = session.get(SurveyDefinition, definition_id)
    if definition is None:
        abort(404, description="No such survey definition.")
    try:
        set_status(
            session, settings(), definition, status=request.form.get("status", ""), staff=web_user()
        )
    except DefinitionError as error:
        session.rollback()
        return _surveys_page(error=str(error)), 409
    flash(f"{definition.title} is now {definition.status}.")
    return redirect(url_for("staff.surveys"))


@bp.get("/surveys/<int:definition_id>")
@login_required("staff")
def survey_definition(definition_id: int) -> str:
    """Show a definition's questions (with edit and remove while it is a draft)."""
    return _survey_page(_definition(definition_id))


def _definition(definition_id: int) -> SurveyDefinition:
    definition = db().get(SurveyDefinition, definition_id)
    if definition is None:
        abort(404, description="No such survey definition.")
    return definition


def _survey_page(definition: SurveyDefinition, error: str | None = None) -> str:
    questions = survey_questions(db(), definition_id=definition.id)
    return render_template(
        "staff/survey.html", definition=definition, questions=questions, error=error
    )


@bp.route("/surveys/<int:definition_id>/questions/new", methods=["GET", "POST"])
@login_required("staff")
def question_new(definition_id: int) -> str | Response | tuple[str, int]:
    """Add a question to a draft survey."""
    return _question_form(_definition(definition_id), None)


@bp.route("/surveys/<int:definition_id>/questions/<int:question_id>", methods=["GET", "POST"])
@login_required("staff")
def question(definition_id: int, question_id: int) -> str | Response | tuple[str, int]:
    """Change one question of a draft survey."""
    definition = _definition(definition_id)
    return _question_form(definition, _question(definition, question_id))


@bp.post("/surveys/<int:definition_id>/questions/<int:question_id>/delete")
@login_required("staff")
def question_delete(definition_id: int, question_id: int) -> Response | tuple[str, int]:
    """Remove one question from a draft survey."""
    session = db()
    definition = _definition(definition_id)
    found = _question(definition, question_id)
    try:
        remove_question(session, settings(), definition, found, staff=web_user())
    except DefinitionError as error:
        session.rollback()
        return _survey_page(definition, str(error)), 409
    flash(f"Question {found.key} removed.")
    return redirect(url_for("staff.survey_definition", definition_id=definition_id))


def _question(definition: SurveyDefinition, question_id: int) -> SurveyQuestion:
    found = db().get(SurveyQuestion, question_id)
    if found is None or found.definition_id != definition.id:
        abort(404, description="No such question in this survey.")
    return found


def _question_form(
    definition: SurveyDefinition, found: SurveyQuestion | None
) -> str | Response | tuple[str, int]:
    """Show a question's form; save it if the survey is a draft and the answers fit together."""
    session = db()
    values: dict = question_values(found)
    errors: dict = {}
    error = None
    status = 200
    if definition.status != "draft":
        error = (
            f"The {definition.year} survey is {definition.status}: its questions can change "
            "only while it is a draft."
        )
    if request.method == "POST":
        values = {**request.form, "required": request.form.get("required") == "yes"}
        try:
            loaded = question_schema.load(question_data(request.form))
            saved = save_question(
                session, settings(), definition, loaded, staff=web_user(), question=found
            )
        except DefinitionError as refusal:
            session.rollback()
            error, status = str(refusal), 409
        except ValidationError as invalid:
            session.rollback()
            errors, status = invalid.normalized_messages(), 422
        else:
            flash(f"Question {saved.key} saved.")
            return redirect(url_for("staff.survey_definition", definition_id=definition.id))
    page = render_template(
        "staff/question.html",
        definition=definition,
        question=found,
        values=values,
        errors=errors,
        error=error,
        types=EDITABLE_TYPES,
        aggregations=AGGREGATIONS,
    )
    return page, status


def _year(raw: str | None) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise DefinitionError("Give the reporting year as a number, e.g. 2026.") from None


def _surveys_page(**context: object) -> str:
    rows = db().scalars(
        select(SurveyDefinition).order_by(
            SurveyDefinition.year.desc(), SurveyDefinition.version.desc()
        )
    )
    context = {"report": None, "error": None, "created": None, "refusal": None, **context}
    return render_template("staff/surveys.html", definitions=list(rows), limits=LIMITS, **context)
