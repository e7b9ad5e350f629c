"""The mail outbox through a real Celery worker and a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from collector.surveys import decide_response
from outcomes.accounts import create_user
from outcomes.config import Settings
from outcomes.db import session_factory
from outcomes.mail import SWEEP_MAIL_TASK, MailDeferred, deliver, enqueue_mail, queue_mail
from outcomes.models import Mail, SurveyResponse
from outcomes.queue import producer
from tests.conftest import wait_for
from tests.factories import make_member, make_survey


def _queue(settings: Settings, *addresses: str) -> list[int]:
    with session_factory(settings.database_url)() as session:
        rows = [
            queue_mail(session, to=a, subject=f"Hello {a}", body=f"Body for {a}", kind="other")
            for a in addresses
        ]
        session.commit()
        return [row.id for row in rows]


def _status(db, mail_id: int) -> Mail:
    db.rollback()  # end the read transaction, so the worker's commit is visible
    row = db.get(Mail, mail_id, populate_existing=True)
    assert row is not None
    return row


def test_a_queued_mail_reaches_the_smtp_server_once(mail_worker, mail_settings, settings, smtp, db):
    smtp.inbox.received.clear()
    ids = _queue(settings, "one@example.org", "two@example.org")
    enqueue_mail(mail_settings, ids)
    enqueue_mail(mail_settings, ids)  # a second send of the same rows sends nothing more

    wait_for(lambda: all(_status(db, i).status == "sent" for i in ids))
    time.sleep(1)  # let a duplicate, if any, arrive
    assert sorted(smtp.addresses()) == ["one@example.org", "two@example.org"]
    assert "Subject: Hello one@example.org" in smtp.inbox.received[0][1] or (
        "Subject: Hello two@example.org" in smtp.inbox.received[0][1]
    )


def test_a_refused_address_is_failed_with_the_servers_message(
    mail_worker, mail_settings, settings, smtp, db
):
    smtp.inbox.received.clear()
    (mail_id,) = _queue(settings, "refused@example.org")
    enqueue_mail(mail_settings, [mail_id])

    row = wait_for(lambda: (r := _status(db, mail_id)).status == "failed" and r)
    assert row.last_error is not None and row.last_error.startswith("550")
    assert "mailbox unavailable" in row.last_error
    assert smtp.addresses() == []


def test_a_server_that_is_down_leaves_mail_pending_and_the_sweep_sends_it(
    mail_worker, mail_settings, settings, smtp, db
):
    smtp.inbox.received.clear()
    (mail_id,) = _queue(settings, "later@example.org")
    smtp.stop()
    try:
        with session_factory(settings.database_url)() as session, pytest.raises(MailDeferred):
            deliver(session, mail_settings, mail_id)
        row = _status(db, mail_id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.last_error and "refused" in row.last_error.lower()
    finally:
        smtp.start()

    time.sleep(mail_settings.outbox_sweep_seconds)
    producer(mail_settings).send_task(SWEEP_MAIL_TASK)

    wait_for(lambda: _status(db, mail_id).status == "sent")
    assert smtp.addresses() == ["later@example.org"]
    assert _status(db, mail_id).attempts == 2


def test_without_an_smtp_host_mail_is_captured_as_eml_files(settings, db):
    (mail_id,) = _queue(settings, "demo@example.org")
    with session_factory(settings.database_url)() as session:
        assert deliver(session, settings, mail_id) == "sent"
        assert deliver(session, settings, mail_id) == "skipped"  # claimed once, sent once
    files = list((settings.data_dir / "mail").glob(f"{mail_id:06d}-*.eml"))
    assert len(files) == 1
    text = files[0].read_text()
    assert "To: demo@example.org" in text and "Body for demo@example.org" in text
    assert _status(db, mail_id).status == "sent"


def test_a_returned_response_mails_the_staff_message_to_the_member(
    mail_worker, mail_settings, settings, smtp, db
):
    smtp.inbox.received.clear()
    with session_factory(settings.database_url)() as session:
        member = make_member(session)
        definition = make_survey(session, year=2025)
        member_user = create_user(
            session,
            email="reporter@example.org",
            password="correct horse battery",
            role="member",
            member_id=member.id,
        )
        staff = create_user(
            session, email="staff@example.org", password="correct horse battery", role="staff"
        )
        response = SurveyResponse(
            member_id=member.id,
            year=2025,
            definition_id=definition.id,
            status="submitted",
            current_revision=1,
        )
        session.add(response)
        session.commit()
        assert member_user.id
        # mail_settings: the decision's send goes to the mail worker's queue and SMTP server.
        decide_response(
            session,
            mail_settings,
            response=response,
            staff=staff,
            accept=False,
            reason="Employees: give the head count, not hours.",
        )

    wait_for(lambda: smtp.addresses() == ["reporter@example.org"])
    text = smtp.inbox.received[0][1]
    assert "returned for correction" in text
    assert "Employees: give the head count, not hours." in text
    db.rollback()
    assert db.scalar(select(Mail.kind).where(Mail.to_address == "reporter@example.org")) == (
        "decision"
    )
