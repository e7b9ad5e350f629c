"""Campaigns: invitations and reminders through a real worker and a real SMTP server."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from collector import create_app
from outcomes.accounts import create_user
from outcomes.campaigns import CampaignError, open_campaign, send_due_reminders
from outcomes.db import session_factory
from outcomes.mail import REMIND_TASK, enqueue_mail, take_queued
from outcomes.models import Campaign, CampaignInvite, Mail, SurveyResponse, User, utcnow
from outcomes.queue import producer
from tests.collector.web import make_login, post_form, sign_in
from tests.conftest import wait_for
from tests.factories import make_account, make_member, make_survey


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


def _respond(session, member, definition, status: str) -> None:
    session.add(
        SurveyResponse(
            member_id=member.id,
            year=definition.year,
            definition_id=definition.id,
            status=status,
            current_revision=1,
        )
    )


def _refusals(db) -> list[str]:
    db.rollback()  # see the worker's commits
    return list(db.scalars(select(Mail.status).where(Mail.to_address.like("refused%"))))


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
            _respond(session, member, definition, "submitted")
        _respond(session, members[2], definition, "draft")
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


def test_staff_open_a_campaign_by_api_and_follow_submissions_reminders_and_refused_mail(
    mail_worker, mail_settings, smtp, db
):
    smtp.inbox.received.clear()
    with session_factory(mail_settings.database_url)() as session:
        definition = make_survey(session, year=2025)
        members = _members(session, 4)
        refused = make_member(session, code="C-BAD")
        create_user(
            session,
            email="refused@example.org",
            password="correct horse battery",
            role="member",
            member_id=refused.id,
        )
        _respond(session, members[0], definition, "submitted")
        session.commit()
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    collector = create_app(mail_settings).test_client()
    today = utcnow().date()
    chosen = ["C-000", "C-001", "C-002", "C-BAD"]

    opened = collector.post(
        "/api/v1/campaigns",
        json={"year": 2025, "due_on": (today + timedelta(days=1)).isoformat(), "members": chosen},
        headers=staff,
    )

    assert opened.status_code == 201, opened.json
    assert opened.json["invited"] == 4
    wait_for(lambda: len(_subjects(smtp, "is invited")) == 3)  # the fourth address is refused
    wait_for(lambda: _refusals(db) == ["failed"])
    with session_factory(mail_settings.database_url)() as session:
        reminders = send_due_reminders(session, today)
    assert len(reminders) == 3  # C-001, C-002 and C-BAD
    enqueue_mail(mail_settings, reminders)
    wait_for(lambda: _refusals(db) == ["failed", "failed"])
    tracked = collector.get("/api/v1/campaigns/2025", headers=staff).json
    by_code = {m["code"]: m for m in tracked["members"]}
    assert set(by_code) == set(chosen)
    assert by_code["C-000"]["status"] == "submitted"
    assert by_code["C-000"]["reminders"] == 0
    assert by_code["C-001"]["status"] == "not started"
    assert by_code["C-001"]["reminders"] == 1
    assert by_code["C-BAD"]["refused_mail"] == 2  # the invitation and the reminder
    assert by_code["C-BAD"]["refusal"].startswith("550")
    assert by_code["C-001"]["refused_mail"] == 0
    listed = collector.get("/api/v1/campaigns", headers=staff).json
    assert [(c["year"], c["invited"]) for c in listed] == [(2025, 4)]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"year": 2025, "due_on": "31/03/2099"}, 422, "YYYY-MM-DD"),
        ({"year": 2025, "due_on": "0001-01-01"}, 422, "2000-2100"),
        ({"year": 2025, "due_on": "9999-12-28"}, 422, "2000-2100"),
        ({"year": 2025, "due_on": "2099-03-31", "members": ["C-000", "nobody"]}, 422, "nobody"),
        ({"year": 2025, "due_on": "2099-03-31", "reminder_days": [400]}, 422, "reminder_days"),
        ({"year": 2026, "due_on": "2099-03-31"}, 422, "not open"),
    ],
)
def test_a_bad_campaign_request_is_refused_with_a_message_and_writes_nothing(
    collector, db, body, status, words
):
    make_survey(db, year=2025)
    _members(db, 1)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()

    answer = collector.post("/api/v1/campaigns", json=body, headers=staff)

    assert answer.status_code == status
    assert words in str(answer.json)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0
    assert db.scalar(select(func.count()).select_from(Mail)) == 0
    assert collector.get("/api/v1/campaigns/2025", headers=staff).status_code == 404


def test_staff_open_a_campaign_on_its_page_and_see_who_has_reported(collector, db):
    make_survey(db, year=2025)
    _members(db, 3)
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)

    unknown = post_form(
        collector, "/staff/campaigns", {"year": "2025", "due_on": "2099-03-31", "members": "X-1"}
    )
    assert unknown.status_code == 422
    assert "Unknown members: X-1." in unknown.get_data(as_text=True)
    bad = post_form(collector, "/staff/campaigns", {"year": "2025", "due_on": "31.03.2099"})
    assert bad.status_code == 422
    assert "YYYY-MM-DD" in bad.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Campaign)) == 0

    form = {
        "year": "2025",
        "due_on": "2099-03-31",
        "members": "C-000\nC-002",
        "reminder_days": "-7, 3",
    }
    opened = post_form(collector, "/staff/campaigns", form)
    assert opened.status_code == 302
    assert opened.headers["Location"].endswith("/staff/campaigns/2025")
    page = collector.get("/staff/campaigns/2025").get_data(as_text=True)
    assert "0 of 2 invited members have submitted" in page
    assert page.count("Not started") == 2
    db.rollback()
    assert db.scalar(select(Campaign.reminder_days)) == [-7, 3]
    assert db.scalar(select(func.count()).select_from(Mail).where(Mail.kind == "invitation")) == 2
    invited = collector.application.test_client()
    sign_in(invited, db.scalars(select(User).where(User.email == "member0@example.org")).one())
    assert "Due by 31 March 2099." in invited.get("/member/surveys/2025").get_data(as_text=True)
