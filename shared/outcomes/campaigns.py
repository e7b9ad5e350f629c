"""Reporting campaigns: invite members to a year's survey and remind the late ones, once each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from outcomes.mail import queue_mail
from outcomes.models import (
    AuditLog,
    Campaign,
    CampaignInvite,
    CampaignReminder,
    Mail,
    Member,
    SurveyDefinition,
    SurveyResponse,
    User,
)

# 7 and 1 days before the due date, 3 and 10 days after it.
DEFAULT_REMINDER_DAYS = (-7, -1, 3, 10)
# A member whose response has one of these statuses is not reminded.
DONE_STATUSES = ("submitted", "accepted")


@dataclass
class CampaignError(Exception):
    """A refusal with the HTTP status and the messages to show."""

    status: int
    message: str
    errors: dict[str, Any] = field(default_factory=dict)


def _member_addresses(session: Session) -> dict[int | None, list[str]]:
    """Return the addresses of every active member account by member, in one query."""
    found: dict[int | None, list[str]] = {}
    rows = session.execute(
        select(User.member_id, User.email)
        .where(User.role == "member", User.is_active)
        .order_by(User.member_id, User.email)
    )
    for member_id, email in rows:
        found.setdefault(member_id, []).append(email)
    return found


def resolve_members(session: Session, keys: list[str | int] | None) -> list[Member]:
    """Return the active members named by id or code (all, given None); 422 naming unknown ones."""
    active = list(session.scalars(select(Member).where(Member.status == "active")))
    if keys is None:
        return active
    by_key = {str(m.id): m for m in active} | {m.code: m for m in active if m.code}
    unknown = [str(key) for key in keys if str(key) not in by_key]
    if unknown:
        raise CampaignError(
            422, f"Unknown members: {', '.join(unknown)}.", {"members": [f"Unknown: {unknown}"]}
        )
    return list({by_key[str(key)].id: by_key[str(key)] for key in keys}.values())


def open_campaign(
    session: Session,
    *,
    year: int,
    due_on: date,
    today: date,
    actor_id: int | None,
    members: list[str | int] | None = None,
    reminder_days: list[int] | None = None,
) -> Campaign:
    """Add a campaign with its invites and invitation mail; the caller records the change."""
    definition = session.scalar(
        select(SurveyDefinition).where(
            SurveyDefinition.year == year, SurveyDefinition.status == "open"
        )
    )
    if definition is None:
        raise CampaignError(422, f"The {year} survey is not open; open it first.")
    if session.scalar(select(Campaign.id).where(Campaign.year == year)) is not None:
        raise CampaignError(409, f"A campaign for {year} exists already.")
    days = sorted(set(DEFAULT_REMINDER_DAYS if reminder_days is None else reminder_days))
    if days and all(due_on + timedelta(days=d) < today for d in days):
        raise CampaignError(
            422,
            "Every reminder date is in the past; move the due date or the reminder days.",
            {"reminder_days": ["All in the past."]},
        )
    invited = resolve_members(session, members)
    campaign = Campaign(year=year, due_on=due_on, reminder_days=days, created_by=actor_id)
    session.add(campaign)
    session.flush()
    addresses = _member_addresses(session)
    for member in invited:
        session.add(CampaignInvite(campaign_id=campaign.id, member_id=member.id))
        for address in addresses.get(member.id, []):
            queue_mail(
                session,
                to=address,
                subject=f"Outcomes survey {year}: please report by {due_on:%d %B %Y}",
                body=(
                    f"{member.name} is invited to report its {year} figures.\n"
                    f"Sign in to the collector and submit the {year} survey by {due_on:%Y-%m-%d}."
                ),
                kind="invitation",
            )
    session.flush()
    return campaign


def due_date(session: Session, *, member_id: int | None, year: int) -> date | None:
    """Return the date a member's campaign asks for the year's survey, if it was invited."""
    return session.scalar(
        select(Campaign.due_on)
        .join(CampaignInvite, CampaignInvite.campaign_id == Campaign.id)
        .where(Campaign.year == year, CampaignInvite.member_id == member_id)
    )


def tracking(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    """Return each invited member's progress, reminders and undelivered mail, in one query."""
    reminded = (
        select(
            CampaignReminder.member_id,
            func.count().label("reminders"),
            func.max(CampaignReminder.sent_at).label("last_reminded_at"),
        )
        .where(CampaignReminder.campaign_id == campaign.id)
        .group_by(CampaignReminder.member_id)
        .subquery()
    )
    # The campaign's mail the server refused for good: staff must fix the address.
    refused = (
        select(
            User.member_id,
            func.count(Mail.id).label("refused_mail"),
            func.max(Mail.id).label("last_refused"),
        )
        .join(Mail, Mail.to_address == User.email)
        .where(
            Mail.status == "failed",
            Mail.kind.in_(("invitation", "reminder")),
            Mail.created_at >= campaign.created_at,
        )
        .group_by(User.member_id)
        .subquery()
    )
    last = aliased(Mail)
    rows = session.execute(
        select(
            Member.id.label("member_id"),
            Member.code,
            Member.name,
            func.coalesce(SurveyResponse.status, "not started").label("status"),
            func.coalesce(reminded.c.reminders, 0).label("reminders"),
            reminded.c.last_reminded_at,
            func.coalesce(refused.c.refused_mail, 0).label("refused_mail"),
            last.last_error.label("refusal"),
        )
        .select_from(CampaignInvite)
        .join(Member, Member.id == CampaignInvite.member_id)
        .outerjoin(
            SurveyResponse,
            (SurveyResponse.member_id == Member.id) & (SurveyResponse.year == campaign.year),
        )
        .outerjoin(reminded, reminded.c.member_id == Member.id)
        .outerjoin(refused, refused.c.member_id == Member.id)
        .outerjoin(last, last.id == refused.c.last_refused)
        .where(CampaignInvite.campaign_id == campaign.id)
        .order_by(Member.name, Member.id)
    )
    return [dict(row._mapping) for row in rows]


def send_due_reminders(session: Session, today: date) -> list[int]:
    """Queue the reminders due today to invited members not yet done; commit; return mail ids.

    Each (campaign, member, day) reminder is claimed by inserting its row under a unique
    constraint in a savepoint: a second run, or a run beside it, finds it taken and sends nothing.
    """
    mail_ids: list[int] = []
    addresses = _member_addresses(session)
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
        due_days = [
            d for d in campaign.reminder_days if campaign.due_on + timedelta(days=d) <= today
        ]
        if not due_days:
            continue
        offset = max(due_days)  # the latest reminder due; earlier missed ones are not sent late
        late = session.execute(
            select(CampaignInvite.member_id, Member.name)
            .join(Member, Member.id == CampaignInvite.member_id)
            .outerjoin(
                SurveyResponse,
                (SurveyResponse.member_id == CampaignInvite.member_id)
                & (SurveyResponse.year == campaign.year),
            )
            .where(CampaignInvite.campaign_id == campaign.id)
            .where(SurveyResponse.id.is_(None) | SurveyResponse.status.not_in(DONE_STATUSES))
            .order_by(CampaignInvite.member_id)
        ).all()
        for member_id, name in late:
            try:
                with session.begin_nested():
                    session.add(
                        CampaignReminder(
                            campaign_id=campaign.id, member_id=member_id, offset_days=offset
                        )
                    )
            except IntegrityError:  # this reminder went out already
                continue
            when = "is due" if offset < 0 else "was due"
            for address in addresses.get(member_id, []):
                row = queue_mail(
                    session,
                    to=address,
                    subject=(
                        f"Reminder: the {campaign.year} survey {when} {campaign.due_on:%Y-%m-%d}"
                    ),
                    body=(
                        f"{name} has not submitted its {campaign.year} survey yet; it {when} "
                        f"{campaign.due_on:%Y-%m-%d}. Sign in to the collector to submit it."
                    ),
                    kind="reminder",
                )
                mail_ids.append(row.id)
    if mail_ids:
        session.add(
            AuditLog(
                actor_id=None,
                action="campaign.reminders",
                object_type="campaign",
                object_id=None,
                details={"mails": len(mail_ids), "on": today.isoformat()},
            )
        )
    session.info.pop("outcomes.mail.queued", None)  # the caller enqueues the ids it is given
    session.commit()
    return mail_ids
