"""Reporting campaigns: open a year's campaign, follow who has reported and who was reminded."""

from __future__ import annotations

import re
from datetime import date

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from collector.campaigns import CampaignSchema, campaign_by_year, start_campaign
from collector.context import db, settings
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.campaigns import DEFAULT_REMINDER_DAYS, CampaignError, tracking
from outcomes.models import Campaign, SurveyDefinition

FIELDS = ("year", "due_on", "members", "reminder_days")


@bp.route("/campaigns", methods=["GET", "POST"])
@login_required("staff")
def campaigns() -> str | Response | tuple[str, int]:
    """List the campaigns; open one for a survey year."""
    session = db()
    values = {"reminder_days": ", ".join(str(d) for d in DEFAULT_REMINDER_DAYS)}
    errors: dict = {}
    status = 200
    if request.method == "POST":
        values = {name: request.form.get(name, "").strip()[:100_000] for name in FIELDS}
        try:
            data = CampaignSchema().load(_form_data(values))
            campaign = start_campaign(session, settings(), data, staff=web_user())
        except ValidationError as invalid:
            errors, status = invalid.normalized_messages(), 422
        except CampaignError as refused:
            errors = {"_campaign": [refused.message], **refused.errors}
            status = refused.status
        else:
            flash(f"The {campaign.year} campaign is open; invitations are on their way.")
            return redirect(url_for("staff.campaign", year=campaign.year))
    page = render_template(
        "staff/campaigns.html",
        campaigns=list(session.scalars(select(Campaign).order_by(Campaign.year.desc()))),
        open_years=list(
            session.scalars(
                select(SurveyDefinition.year)
                .distinct()
                .where(SurveyDefinition.status == "open")
                .order_by(SurveyDefinition.year.desc())
            )
        ),
        values=values,
        errors=errors,
    )
    return page, status


@bp.get("/campaigns/<int:year>")
@login_required("staff")
def campaign(year: int) -> str:
    """Show who of the invited members has submitted, drafted or not started, and reminders."""
    found = campaign_by_year(db(), year)
    if found is None:
        abort(404, description=f"No campaign for {year}; open one on the campaigns page.")
    return render_template(
        "staff/campaign.html", campaign=found, members=tracking(db(), found), today=date.today()
    )


def _form_data(values: dict[str, str]) -> dict[str, object]:
    """Return the form's text as the schema's input: lists split on commas, spaces or lines."""
    data: dict[str, object] = {"year": values["year"], "due_on": values["due_on"]}
    members = _split(values["members"])
    if members:  # none named: every active member
        data["members"] = members
    data["reminder_days"] = _split(values["reminder_days"])
    return data


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", text) if part]
