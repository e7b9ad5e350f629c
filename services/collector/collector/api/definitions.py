"""Staff manage survey definitions: list, start a year from the last, edit a draft, open, close."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.definitions import (
    STATUSES,
    DefinitionError,
    QuestionSchema,
    copy_previous_year,
    create_definition,
    remove_question,
    save_question,
    set_status,
)
from collector.xlsform import ImportRefused, parse_xlsform
from outcomes.models import SurveyDefinition, SurveyQuestion
from outcomes.queries import survey_questions
from outcomes.schemas import REPORTING_YEARS, Strict

blp = Blueprint("survey_definitions", __name__, description="Survey definitions (staff)")


class QuestionRecordSchema(QuestionSchema):
    """A stored question."""

    id = fields.Integer(dump_only=True)
    position = fields.Integer(dump_only=True)
    logic = fields.Dict(
        dump_only=True,
        metadata={
            "description": "From an XLSForm: section, relevant / constraint / choice_filter as "
            "parsed expression trees with their messages, default, labels and hints by language"
        },
    )


class DefinitionSchema(Schema):
    """A survey definition of one reporting year."""

    id = fields.Integer()
    year = fields.Integer()
    version = fields.Integer()
    title = fields.String()
    status = fields.String(metadata={"description": "draft, open or closed"})


class DefinitionDetailSchema(DefinitionSchema):
    """A survey definition with its questions in display order."""

    questions = fields.List(fields.Nested(QuestionRecordSchema))


class NewYearSchema(Strict):
    """The reporting year to start from the newest definition of the year before."""

    year = fields.Integer(required=True, validate=REPORTING_YEARS)


class StatusSchema(Strict):
    """Open a draft or closed survey, or close an open one."""

    status = fields.String(required=True, validate=validate.OneOf(sorted(STATUSES)))


def _definition(definition_id: int) -> SurveyDefinition:
    found = db().get(SurveyDefinition, definition_id)
    if found is None:
        abort(404, message=f"No survey definition {definition_id}.")
    return found


def _with_questions(definition: SurveyDefinition) -> dict[str, Any]:
    questions = survey_questions(db(), definition_id=definition.id)
    return {**DefinitionSchema().dump(definition), "questions": questions}


@blp.route("")
class Definitions(MethodView):
    """Every survey definition."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, DefinitionSchema(many=True))
    @document_errors(blp, 401, 403)
    def get(self) -> list[SurveyDefinition]:
        """List the definitions, newest year and version first."""
        return list(
            db().scalars(
                select(SurveyDefinition).order_by(
                    SurveyDefinition.year.desc(), SurveyDefinition.version.desc()
                )
            )
        )

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(NewYearSchema)
    @blp.response(201, DefinitionDetailSchema)
    @document_errors(blp, 401, 403, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a year's draft from the newest definition of the year before."""
        session = db()
        try:
            definition = copy_previous_year(
                session, settings(), year=body["year"], staff=current_user()
            )
        except DefinitionError as error:
            session.rollback()
            abort(422, message=str(error), errors={"json": {"year": [str(error)]}})
        return _with_questions(definition)


class ImportFormSchema(Schema):
    """The reporting year and title of a survey imported from an XLSForm."""

    class Meta:
        unknown = EXCLUDE  # other parts of the multipart form are not ours to refuse

    year = fields.Integer(required=True, validate=REPORTING_YEARS)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ImportedSchema(DefinitionDetailSchema):
    """The draft created from an XLSForm, with what the import left out."""

    unsupported = fields.List(fields.String())
    warnings = fields.List(fields.String())


XLSFORM_BODY = {
    "required": True,
    "description": "A multipart form: the XLSForm workbook as 'file', with 'year' and 'title'. "
    "A refused workbook gets a 422 whose errors.report lists every reason.",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "year", "title"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "year": {"type": "integer"},
                    "title": {"type": "string"},
                },
            }
        }
    },
}


@blp.route("/import")
class Import(MethodView):
    """Create a draft definition from an XLSForm workbook."""

    @require("staff")
    @blp.doc(security=BEARER, requestBody=XLSFORM_BODY)
    @blp.response(201, ImportedSchema)
    @document_errors(blp, 401, 403, 413, 422)
    def post(self) -> dict[str, Any]:
        """Import an XLSForm as a new draft version of the year; nothing is written if refused."""
        try:
            form = ImportFormSchema().load(request.form.to_dict())
        except ValidationError as invalid:
            abort(422, message="The import needs correcting.", errors={"form": invalid.messages})
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            abort(422, message="Send the XLSForm workbook as the multipart field 'file'.")
        session = db()
        try:
            report = parse_xlsform(upload.read(), upload.filename)
            definition = create_definition(
                session,
                settings(),
                year=form["year"],
                title=form["title"],
                questions=report.questions,
                staff=current_user(),
                source=f"XLSForm {upload.filename}"[:100],
            )
        except ImportRefused as refusal:
            session.rollback()
            abort(422, message=str(refusal), errors={"report": refusal.lines()})
        except DefinitionError as error:
            session.rollback()
            abort(422, message=str(error))
        return {
            **_with_questions(definition),
            "unsupported": report.unsupported,
            "warnings": report.warnings,
        }


@blp.route("/<int:definition_id>")
class Definition(MethodView):
    """One survey definition with its questions."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, DefinitionDetailSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, definition_id: int) -> dict[str, Any]:
        """Return a definition and its questions in display order."""
        return _with_questions(_definition(definition_id))


@blp.route("/<int:definition_id>/status")
class DefinitionStatus(MethodView):
    """Open or close a definition."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(StatusSchema)
    @blp.response(200, DefinitionSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, body: dict[str, Any], definition_id: int) -> SurveyDefinition:
        """Open a draft or closed survey for members, or close an open one."""
        session = db()
        definition = _definition(definition_id)
        try:
            set_status(session, settings(), definition, status=body["status"], staff=current_user())
        except DefinitionError as error:
            session.rollback()
            abort(409, message=str(error))
        return definition


@blp.route("/<int:definition_id>/questions")
class Questions(MethodView):
    """The questions of a draft definition."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(QuestionSchema)
    @blp.response(201, QuestionRecordSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, body: dict[str, Any], definition_id: int) -> SurveyQuestion:
        """Add a question to a draft survey (409 once it is open)."""
        return _save(definition_id, body, None)


@blp.route("/<int:definition_id>/questions/<int:question_id>")
class Question(MethodView):
    """One question of a draft definition."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(QuestionSchema)
    @blp.response(200, QuestionRecordSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def put(self, body: dict[str, Any], definition_id: int, question_id: int) -> SurveyQuestion:
        """Replace a question of a draft survey (409 once it is open)."""
        return _save(definition_id, body, question_id)

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(204)
    @document_errors(blp, 401, 403, 404, 409)
    def delete(self, definition_id: int, question_id: int) -> None:
        """Remove a question from a draft survey (409 once it is open)."""
        session = db()
        definition = _definition(definition_id)
        try:
            remove_question(
                session,
                settings(),
                definition,
                _question(definition, question_id),
                staff=current_user(),
            )
        except DefinitionError as error:
            session.rollback()
            abort(409, message=str(error))


def _question(definition: SurveyDefinition, question_id: int) -> SurveyQuestion:
    found = db().get(SurveyQuestion, question_id)
    if found is None or found.definition_id != definition.id:
        abort(404, message=f"No question {question_id} in survey definition {definition.id}.")
    return found


def _save(definition_id: int, body: dict[str, Any], question_id: int | None) -> SurveyQuestion:
    session = db()
    definition = _definition(definition_id)
    found = _question(definition, question_id) if question_id is not None else None
    try:
        saved = save_question(
            session, settings(), definition, body, staff=current_user(), question=found
        )
    except DefinitionError as error:
        session.rollback()
        abort(409, message=str(error))
    except ValidationError as invalid:
        session.rollback()
        abort(422, message="The question needs correcting.", errors={"json": invalid.messages})
    return saved
