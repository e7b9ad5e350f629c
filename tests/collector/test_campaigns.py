"""Campaigns: invitations and reminders through a real worker and a real SMTP server."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from outcomes.accounts import create_user
from outcomes.campaigns import CampaignError, open_campaign
from outcomes.db import session_factory
from outcomes.mail import REMIND_TASK, enqueue_mail, take_queued
from outcomes.models import Campaign, CampaignInvite, Mail, SurveyResponse, utcnow
from outcomes.queue import producer
from tests.conftest import wait_for
from tests.factories import make_member, make_survey


def _members(session, count: int) -> list:
    members = []
    for number in range(count):
        member = make_member(session, code=f"C-{number:03d}")
        create_user(
            session,
            email=f"member{number}@example.org",
            password="correct horse battery",
            role="member",
            member_id=member.id,
        )
        members.append(member)
    return members


def _subjects(smtp, word: str) -> list[str]:
    return sorted(a for a, text in smtp.inbox.received if word in text)


def test_reminders_reach_exactly_the_members_who_have_not_submitted(
    mail_worker, mail_settings, settings, smtp, db
):
    smtp.inbox.received.clear()
    today = utcnow().date()
    with session_factory(settings.database_url)() as session:
        definition = make_survey(session, year=2025)
        members = _members(session, 5)
        # Due tomorrow; the reminder a day before is due today.
        open_campaign(
            session,
            year=2025,
            due_on=today + timedelta(days=1),
            today=today,
            actor_id=None,
            reminder_days=[-1, 3],
        )
        invitations = take_queued(session)
        session.commit()
        enqueue_mail(mail_settings, invitations)
        for member in members[:2]:
            session.add(
                SurveyResponse(
                    member_id=member.id,
                    year=2025,
                    definition_id=definition.id,
                    status="submitted",
                    current_revision=1,
                )
            )
        session.add(
            SurveyResponse(
                member_id=members[2].id,
                year=2025,
                definition_id=definition.id,
                status="draft",
                current_revision=1,
            )
        )
        session.commit()

    wait_for(lambda: len(_subjects(smtp, "is invited")) == 5)
    sent = producer(mail_settings).send_task(REMIND_TASK)
    assert sent.get(timeout=60) == 3
    expected = ["member2@example.org", "member3@example.org", "member4@example.org"]
    wait_for(lambda: _subjects(smtp, "Reminder:") == expected)

    again = producer(mail_settings).send_task(REMIND_TASK)
    assert again.get(timeout=60) == 0
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Mail).where(Mail.kind == "reminder")) == 3
    assert _subjects(smtp, "Reminder:") == expected


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"members": ["C-000", "C-999", 424242]}, 422, "Unknown members: C-999, 424242"),
        ({"reminder_days": [-30, -20], "due_on": date(2025, 1, 10)}, 422, "in the past"),
        ({"year": 2031}, 422, "not open"),
    ],
)
def test_bad_campaigns_are_refused_and_nothing_is_written(settings, db, change, status, words):
    with session_factory(settings.database_url)() as session:
        make_survey(session, year=2025)
        _members(session, 2)
        session.commit()
        arguments = {"year": 2025, "due_on": date(2025, 1, 10) + timedelta(days=400)} | change
        with pytest.raises(CampaignError) as refused:
            open_campaign(session, today=date(2025, 2, 1), actor_id=None, **arguments)
        session.rollback()
    assert refused.value.status == status
    assert words in refused.value.message
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0
    assert db.scalar(select(func.count()).select_from(CampaignInvite)) == 0
    assert db.scalar(select(func.count()).select_from(Mail)) == 0


def test_a_second_campaign_for_a_year_is_a_conflict(settings):
    today = date(2025, 2, 1)
    with session_factory(settings.database_url)() as session:
        make_survey(session, year=2025)
        _members(session, 1)
        open_campaign(session, year=2025, due_on=date(2025, 3, 1), today=today, actor_id=None)
        session.commit()
        with pytest.raises(CampaignError) as refused:
            open_campaign(session, year=2025, due_on=date(2025, 4, 1), today=today, actor_id=None)
    assert refused.value.status == 409
