"""Staff open a year's reporting campaign: one schema and one write for the page and the API."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector.changes import record_change
from collector.kinds import date_field
from outcomes.campaigns import CampaignError, open_campaign
from outcomes.config import Settings
from outcomes.models import Campaign, CampaignInvite, User
from outcomes.schemas import BoundedList

MAX_MEMBERS = 5000


class CampaignSchema(Schema):
    """A campaign to open: the year, the due date, who is invited and when reminders go out."""

    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    due_on = date_field(
        validate=validate.Range(
            min=date(2000, 1, 1), max=date(2100, 12, 31), error="Give a due date in 2000-2100."
        )
    )
    members = BoundedList(
        fields.String(validate=validate.Length(min=1, max=64)),
        validate=validate.Length(min=1, max=MAX_MEMBERS),
        load_default=None,
        metadata={"description": "Member codes or ids to invite; leave out to invite all."},
    )
    reminder_days = BoundedList(
        fields.Integer(validate=validate.Range(min=-90, max=180)),
        validate=validate.Length(max=12),
        load_default=None,
        metadata={"description": "Days from the due date (-7: a week before); default -7,-1,3,10."},
    )


def start_campaign(
    session: Session, settings: Settings, data: dict[str, Any], *, staff: User
) -> Campaign:
    """Open a campaign and record it; its invitations are sent after the commit."""
    try:
        campaign = open_campaign(
            session,
            year=data["year"],
            due_on=data["due_on"],
            today=date.today(),
            actor_id=staff.id,
            members=data.get("members"),
            reminder_days=data.get("reminder_days"),
        )
        record_change(
            session,
            settings,
            actor_id=staff.id,
            action="campaign.opened",
            object_type="campaign",
            object_id=campaign.year,
            details={"due_on": campaign.due_on.isoformat(), "invited": invited(session, campaign)},
        )
    except CampaignError:
        session.rollback()
        raise
    except IntegrityError:  # another staff member opened this year's campaign meanwhile
        session.rollback()
        raise CampaignError(409, f"A campaign for {data['year']} exists already.") from None
    return campaign


def invited(session: Session, campaign: Campaign) -> int:
    """Return how many members a campaign invited."""
    query = select(func.count()).where(CampaignInvite.campaign_id == campaign.id)
    return session.scalar(query) or 0


def campaign_by_year(session: Session, year: int) -> Campaign | None:
    """Return a year's campaign, if one was opened."""
    return session.scalar(select(Campaign).where(Campaign.year == year))
