"""Membership applications: anyone may apply; staff list and decide them."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.applications import (
    ApplicationError,
    application_by_reference,
    approve_application,
    receive_application,
    reject_application,
)
from collector.auth import current_user, require
from collector.context import db, settings
from collector.extensions import apply_limit
from outcomes.models import Application
from outcomes.schemas import ApplicationReceiptSchema, ApplicationSchema, DecisionSchema

blp = Blueprint("applications", __name__, description="Membership applications")


class ApplicationRecordSchema(ApplicationReceiptSchema):
    """An application as staff see it."""

    membership_class = fields.String(dump_only=True)
    country = fields.String(dump_only=True)
    contact_name = fields.String(dump_only=True)
    contact_email = fields.String(dump_only=True)
    details = fields.Dict(dump_only=True)
    decision_reason = fields.String(dump_only=True, allow_none=True)
    member_id = fields.Integer(dump_only=True, allow_none=True)


class ApprovalSchema(Schema):
    """The result of a decision; an approval also names the new member and its account."""

    reference = fields.String()
    status = fields.String()
    member_id = fields.Integer(allow_none=True)
    account_email = fields.String(allow_none=True)
    temporary_password = fields.String(
        allow_none=True, metadata={"description": "Shown once; hand it to the applicant."}
    )


@blp.route("")
class Applications(MethodView):
    """Apply for membership; staff list the applications."""

    @apply_limit
    @blp.arguments(ApplicationSchema)
    @blp.response(201, ApplicationReceiptSchema)
    @document_errors(blp, 400, 413, 422, 429)
    def post(self, data: dict[str, Any]) -> Application:
        """Apply for membership; answers with the reference to quote."""
        return receive_application(db(), settings(), data)

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, ApplicationRecordSchema(many=True))
    @document_errors(blp, 401, 403)
    def get(self) -> list[Application]:
        """List every application, newest first."""
        return list(db().scalars(select(Application).order_by(Application.id.desc())))


@blp.route("/<string:reference>/decision")
class ApplicationDecision(MethodView):
    """Approve or reject one application."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(DecisionSchema)
    @blp.response(200, ApprovalSchema)
    @document_errors(blp, 401, 403, 404, 409, 422)
    def post(self, decision: dict[str, Any], reference: str) -> dict[str, Any]:
        """Approve (creating the member and its account) or reject with a reason."""
        session = db()
        application = application_by_reference(session, reference)
        if application is None:
            abort(404, message=f"No application {reference!r}.")
        try:
            if decision["decision"] == "approve":
                approval = approve_application(
                    session, settings(), application, staff=current_user()
                )
                extra = {
                    "member_id": approval.member.id,
                    "account_email": approval.user.email,
                    "temporary_password": approval.password,
                }
            else:
                reject_application(
                    session,
                    settings(),
                    application,
                    staff=current_user(),
                    reason=decision["reason"],
                )
                extra = {}
        except ApplicationError as error:
            session.rollback()
            abort(409, message=str(error))
        return {"reference": reference, "status": application.status, **extra}
