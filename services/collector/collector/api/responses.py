"""Staff list members' survey responses and accept or reject them."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.surveys import SurveyError, decide_response
from outcomes.models import RESPONSE_STATUSES, Member, SurveyResponse, SurveyRevision
from outcomes.schemas import REPORTING_YEARS, Strict

blp = Blueprint("survey_responses", __name__, description="Survey responses (staff)")


class ResponseFilterSchema(Strict):
    """Which responses to list."""

    status = fields.String(validate=validate.OneOf(RESPONSE_STATUSES))
    year = fields.Integer(validate=REPORTING_YEARS)


class StaffResponseSchema(Schema):
    """A member's response as staff see it; `answers` are the current revision's."""

    id = fields.Integer()
    member_id = fields.Integer()
    member = fields.String()
    year = fields.Integer()
    status = fields.String()
    revision = fields.Integer()
    updated_at = fields.DateTime()
    answers = fields.Dict()


class ResponseDecisionSchema(Strict):
    """Accept a submitted response (it then counts in the public figures) or reject it."""

    decision = fields.String(required=True, validate=validate.OneOf(("accept", "reject")))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


def _rows(*where: Any) -> list[dict[str, Any]]:
    rows = db().execute(
        select(SurveyResponse, Member.name, SurveyRevision.answers)
        .join(Member, Member.id == SurveyResponse.member_id)
        .outerjoin(
            SurveyRevision,
            (SurveyRevision.response_id == SurveyResponse.id)
            & (SurveyRevision.number == SurveyResponse.current_revision),
        )
        .where(*where)
        .order_by(SurveyResponse.year.desc(), Member.name)
    )
    return [
        {
            "id": response.id,
            "member_id": response.member_id,
            "member": name,
            "year": response.year,
            "status": response.status,
            "revision": response.current_revision,
            "updated_at": response.updated_at,
            "answers": answers or {},
        }
        for response, name, answers in rows
    ]


@blp.route("")
class Responses(MethodView):
    """Members' responses."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(ResponseFilterSchema, location="query", unknown=RAISE)
    @blp.response(200, StaffResponseSchema(many=True))
    @document_errors(blp, 401, 403, 422)
    def get(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """List responses (filter by ?status=submitted&year=2025), newest year first."""
        where = [getattr(SurveyResponse, k) == v for k, v in filters.items()]
        return _rows(*where)


@blp.route("/<int:response_id>")
class OneResponse(MethodView):
    """One member's response."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, StaffResponseSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, response_id: int) -> dict[str, Any]:
        """Return a response with its current answers."""
        found = _rows(SurveyResponse.id == response_id)
        if not found:
            abort(404, message=f"No survey response {response_id}.")
        return found[0]


@blp.route("/<int:response_id>/decision")
class ResponseDecision(MethodView):
    """Accept or reject one submitted response."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(ResponseDecisionSchema)
    @blp.response(200, StaffResponseSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, decision: dict[str, Any], response_id: int) -> dict[str, Any]:
        """Accept (asking for re-aggregation) or reject with a reason; only submitted ones."""
        session = db()
        found = session.get(SurveyResponse, response_id)
        if found is None:
            abort(404, message=f"No survey response {response_id}.")
        try:
            decide_response(
                session,
                settings(),
                response=found,
                staff=current_user(),
                accept=decision["decision"] == "accept",
                reason=decision["reason"],
            )
        except SurveyError as error:
            session.rollback()
            abort(error.status, message=error.message, errors=error.errors)
        return _rows(SurveyResponse.id == response_id)[0]
