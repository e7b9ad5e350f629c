"""Staff open a year's reporting campaign and follow who has reported."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.campaigns import CampaignSchema, campaign_by_year, invited, start_campaign
from collector.context import db, settings
from outcomes.campaigns import CampaignError, tracking
from outcomes.models import Campaign

blp = Blueprint("campaigns", __name__, description="Reporting campaigns: invitations, reminders")


class CampaignSummarySchema(Schema):
    """A campaign: its year, due date, reminder schedule and how many members it invited."""

    year = fields.Integer()
    due_on = fields.Date()
    reminder_days = fields.List(fields.Integer())
    invited = fields.Integer()
    created_at = fields.DateTime()


class TrackedMemberSchema(Schema):
    """One invited member's progress."""

    member_id = fields.Integer()
    code = fields.String(allow_none=True)
    name = fields.String()
    status = fields.String(
        metadata={"description": "not started, draft, submitted, accepted or rejected (returned)"}
    )
    reminders = fields.Integer()
    last_reminded_at = fields.DateTime(allow_none=True)
    refused_mail = fields.Integer(
        metadata={"description": "Campaign mail the server refused for good (bounces)."}
    )
    refusal = fields.String(
        allow_none=True, metadata={"description": "The server's answer to the latest one."}
    )


class CampaignTrackingSchema(CampaignSummarySchema):
    """A campaign with every invited member's progress."""

    members = fields.List(fields.Nested(TrackedMemberSchema))


def summary(campaign: Campaign) -> dict[str, Any]:
    """Return a campaign's summary fields."""
    columns = ("year", "due_on", "reminder_days", "created_at")
    return {c: getattr(campaign, c) for c in columns} | {"invited": invited(db(), campaign)}


@blp.route("")
class Campaigns(MethodView):
    """Every reporting campaign."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, CampaignSummarySchema(many=True))
    @document_errors(blp, 401, 403)
    def get(self) -> list[dict[str, Any]]:
        """List the campaigns, newest year first."""
        return [summary(c) for c in db().scalars(select(Campaign).order_by(Campaign.year.desc()))]

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(CampaignSchema)
    @blp.response(201, CampaignSummarySchema)
    @document_errors(blp, 401, 403, 409, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Open a year's campaign (its survey must be open): each invited member is mailed."""
        try:
            campaign = start_campaign(db(), settings(), body, staff=current_user())
        except CampaignError as refused:
            errors = {"json": refused.errors} if refused.errors else {"request": [refused.message]}
            abort(refused.status, message=refused.message, errors=errors)
        return summary(campaign)


@blp.route("/<int:year>")
class CampaignTracking(MethodView):
    """One year's campaign and who has reported."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, CampaignTrackingSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, year: int) -> dict[str, Any]:
        """Return the campaign with each invited member's status, reminders and refused mail."""
        campaign = campaign_by_year(db(), year)
        if campaign is None:
            abort(404, message=f"No campaign for {year}; open one first.")
        return summary(campaign) | {"members": tracking(db(), campaign)}
