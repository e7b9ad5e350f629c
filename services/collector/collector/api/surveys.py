"""A member's annual survey: GET the current response, PUT a new revision."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.surveys import SurveyError, current_response, open_survey_for, save_survey
from outcomes.repeats import Asked
from outcomes.schemas import AskedQuestionSchema, SurveyResponseSchema, SurveySubmissionSchema

blp = Blueprint("surveys", __name__, description="The annual member survey")


@blp.route("/<int:year>")
class MemberSurvey(MethodView):
    """The signed-in member's own response for one reporting year."""

    @require("member")
    @blp.doc(security=BEARER)
    @blp.response(200, SurveyResponseSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, year: int) -> dict[str, Any]:
        """Return the member's latest revision for a reporting year."""
        found = current_response(db(), member_id=current_user().member_id, year=year)
        if found is None:
            abort(404, message=f"You have no survey response for {year} yet.")
        return found

    @require("member")
    @blp.doc(security=BEARER)
    @blp.arguments(SurveySubmissionSchema)
    @blp.response(200, SurveyResponseSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def put(self, submission: dict[str, Any], year: int) -> Any:
        """Save a new revision (draft or submitted); an Idempotency-Key makes retries no-ops."""
        try:
            status, body = save_survey(
                db(),
                settings(),
                user=current_user(),
                year=year,
                submission=submission,
                idempotency_key=request.headers.get("Idempotency-Key"),
            )
        except SurveyError as error:
            abort(error.status, message=error.message, errors=error.errors)
        return body, status


@blp.route("/<int:year>/questions")
class MemberSurveyQuestions(MethodView):
    """The questions of a year's open survey as the signed-in member answers them."""

    @require("member")
    @blp.doc(security=BEARER)
    @blp.response(200, AskedQuestionSchema(many=True))
    @document_errors(blp, 401, 403, 404)
    def get(self, year: int) -> list[Asked]:
        """List the questions in order, a per-facility repeat's once for each of your facilities."""
        member_id = current_user().member_id
        assert member_id is not None  # require("member")
        try:
            return list(open_survey_for(db(), year, member_id).asked)
        except SurveyError as error:
            abort(error.status, message=error.message)
