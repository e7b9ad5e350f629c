"""E-mail as a transactional outbox: a request writes a mail row; a worker sends it by SMTP."""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from outcomes.config import Settings, write_private
from outcomes.models import Mail, utcnow
from outcomes.queue import send_task

log = logging.getLogger(__name__)

SEND_MAIL_TASK = "outcomes.send_mail"
SWEEP_MAIL_TASK = "outcomes.sweep_mail"
REMIND_TASK = "outcomes.send_reminders"
# The session.info key under which a transaction's queued mail ids wait for its commit.
QUEUED = "outcomes.mail.queued"
# A sender that claimed a row and died leaves it "sending"; after this long another may take it.
CLAIM_EXPIRES = timedelta(minutes=5)


class MailDeferred(Exception):
    """The server could not take the mail now (down, timed out, 4xx): the row stays pending."""


def queue_mail(session: Session, *, to: str, subject: str, body: str, kind: str) -> Mail:
    """Add a mail row in the caller's transaction, so the mail exists only if the change does."""
    row = Mail(to_address=to[:254], subject=subject[:200], body=body, kind=kind, status="pending")
    session.add(row)
    session.flush()
    # record_change enqueues the session's queued mail once its transaction has committed.
    session.info.setdefault(QUEUED, []).append(row.id)
    return row


def take_queued(session: Session) -> list[int]:
    """Return and forget the ids of mail rows queued in the session's transaction."""
    return list(session.info.pop(QUEUED, []))


def enqueue_mail(settings: Settings, mail_ids: list[int]) -> None:
    """After the commit, ask the worker to send these rows; the mail sweep covers a failed send."""
    for mail_id in mail_ids:
        send_task(settings, SEND_MAIL_TASK, {"mail_id": mail_id}, f"mail-{mail_id}-{utcnow():%s}")


def build_message(settings: Settings, row: Mail) -> EmailMessage:
    """Return the message of a mail row."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=f"outcomes-mail-{row.id}")
    message.set_content(row.body)
    return message


def _abandoned(now: datetime) -> ColumnElement[bool]:
    """Rows a sender claimed and then died on: another sender may take them."""
    return (Mail.status == "sending") & (Mail.claimed_at < now - CLAIM_EXPIRES)


def claim(session: Session, mail_id: int, now: datetime) -> Mail | None:
    """Claim a pending row for one sender (a conditional update), or None if another has it."""
    taken = session.execute(
        update(Mail)
        .where(
            Mail.id == mail_id,
            or_(Mail.status == "pending", _abandoned(now)),
        )
        .values(status="sending", claimed_at=now, attempts=Mail.attempts + 1)
    )
    session.commit()
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Mail, mail_id, populate_existing=True)


def deliver(session: Session, settings: Settings, mail_id: int) -> str:
    """Send one mail row once; return its new status. Raises MailDeferred to be retried."""
    row = claim(session, mail_id, utcnow())
    if row is None:
        return "skipped"
    message = build_message(settings, row)
    try:
        if settings.smtp_host:
            _send_smtp(settings, message)
        else:
            _capture(settings, row, message)
    except smtplib.SMTPResponseException as error:
        return _refused_or_deferred(session, row, error.smtp_code, _text(error.smtp_error))
    except smtplib.SMTPRecipientsRefused as error:
        code, text = next(iter(error.recipients.values()))
        return _refused_or_deferred(session, row, code, _text(text))
    except (OSError, smtplib.SMTPException) as error:  # refused connection, timeout, cut off
        _finish(session, row, "pending", f"{type(error).__name__}: {error}")
        raise MailDeferred(str(error)) from error
    _finish(session, row, "sent", None)
    return "sent"


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _refused_or_deferred(session: Session, row: Mail, code: int, text: str) -> str:
    """A 5xx answer is final (failed, with the server's words); anything else is tried again."""
    reason = f"{code} {text}"
    if 500 <= code < 600:
        _finish(session, row, "failed", reason)
        log.warning("mail %s to %s refused: %s", row.id, row.to_address, reason)
        return "failed"
    _finish(session, row, "pending", reason)
    raise MailDeferred(reason)


def _finish(session: Session, row: Mail, status: str, error: str | None) -> None:
    row.status = status
    row.last_error = None if error is None else error[:500]
    if status == "sent":
        row.sent_at = utcnow()
    session.commit()


def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    """Send through the configured server; the timeout bounds the connect and every answer."""
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


def _capture(settings: Settings, row: Mail, message: EmailMessage) -> None:
    """With no SMTP host (make run), keep the mail as an .eml file and log one line for it."""
    folder = settings.data_dir / "mail"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{row.id:06d}-{row.kind}.eml"
    if not path.exists():
        write_private(path, message.as_string())
    log.info(
        "mail %s captured (no SMTP_HOST): to %s, %r, %s", row.id, row.to_address, row.subject, path
    )


def pending_mail(session: Session, *, older_than: datetime) -> list[int]:
    """Return ids of mail rows still waiting (or claimed by a sender that died), oldest first."""
    query = (
        select(Mail.id)
        .where(
            or_((Mail.status == "pending") & (Mail.created_at <= older_than), _abandoned(utcnow()))
        )
        .order_by(Mail.id)
        .limit(500)
    )
    return list(session.scalars(query))
