"""Staff list members' survey responses, accept them (one or many) or return one for correction."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.review import BULK_LIMIT, FLAG_REASONS, accept_many, answer_flags
from collector.surveys import SurveyError, decide_response
from outcomes.models import (
    MEMBERSHIP_CLASSES,
    RESPONSE_STATUSES,
    Member,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.schemas import REPORTING_YEARS, BoundedList, Country, Strict

blp = Blueprint("survey_responses", __name__, description="Survey responses (staff)")


class ResponseFilterSchema(Strict):
    """Which responses to list."""

    status = fields.String(validate=validate.OneOf(RESPONSE_STATUSES))
    year = fields.Integer(validate=REPORTING_YEARS)
    membership_class = fields.String(validate=validate.OneOf(MEMBERSHIP_CLASSES))
    country = Country()
    flagged = fields.Boolean(metadata={"description": "Only flagged (true) or unflagged (false)."})


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
    flags = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String(validate=validate.OneOf(FLAG_REASONS))),
        metadata={"description": "Flagged questions with the rules they break (README)."},
    )


class ResponseDecisionSchema(Strict):
    """Accept a submitted response (it then counts in the public figures) or return it.

    "reject" returns it to the member for correction; `reason` is the message they see.
    """

    decision = fields.String(required=True, validate=validate.OneOf(("accept", "reject")))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))
    revision = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "The revision reviewed; refused (409) if the member saved since."},
    )


class ChosenResponseSchema(Strict):
    """A response and the revision staff saw in the list."""

    id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    revision = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class BulkAcceptSchema(Strict):
    """Responses to accept together."""

    responses = BoundedList(
        fields.Nested(ChosenResponseSchema),
        required=True,
        validate=validate.Length(min=1, max=BULK_LIMIT),
    )


class SkippedSchema(Schema):
    """A response a bulk acceptance left as it was, and why."""

    id = fields.Integer()
    reason = fields.String()


class BulkAcceptedSchema(Schema):
    """What a bulk acceptance did."""

    accepted = fields.List(fields.Integer())
    skipped = fields.List(fields.Nested(SkippedSchema))


def _rows(*where: Any) -> list[dict[str, Any]]:
    session = db()
    rows = session.execute(
        select(SurveyResponse, Member.name, SurveyRevision.answers)
        .join(Member, Member.id == SurveyResponse.member_id)
        .outerjoin(
            SurveyRevision,
            (SurveyRevision.response_id == SurveyResponse.id)
            & (SurveyRevision.number == SurveyResponse.current_revision),
        )
        .where(*where)
        .order_by(SurveyResponse.year.desc(), Member.name)
    ).all()
    flags = answer_flags(session, [response.id for response, _, _ in rows])
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
            "flags": flags.get(response.id, {}),
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
        """List responses (filter by ?status=submitted&year=2025&flagged=false), newest first."""
        flagged = filters.pop("flagged", None)
        where = [
            getattr(Member if k in ("membership_class", "country") else SurveyResponse, k) == v
            for k, v in filters.items()
        ]
        rows = _rows(*where)
        return rows if flagged is None else [r for r in rows if bool(r["flags"]) == flagged]


@blp.route("/bulk-accept")
class BulkAccept(MethodView):
    """Accept many submitted responses at once."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(BulkAcceptSchema)
    @blp.response(200, BulkAcceptedSchema)
    @document_errors(blp, 401, 403, 422)
    def post(self, chosen: dict[str, Any]) -> dict[str, Any]:
        """Accept each response still at the given revision and not flagged; list the rest."""
        return accept_many(db(), settings(), staff=current_user(), wanted=chosen["responses"])


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
                revision=decision.get("revision"),
            )
        except SurveyError as error:
            session.rollback()
            abort(error.status, message=error.message, errors=error.errors)
        return _rows(SurveyResponse.id == response_id)[0]
