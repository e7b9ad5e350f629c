"""The mail outbox: one row per message, written in the transaction of the change it reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.models.base import Base, created_at

# pending: not sent yet (new, or the server was down); sending: claimed by one sender;
# sent: the server took it; failed: the server refused it for good (5xx), with its message.
MAIL_STATUSES = ("pending", "sending", "sent", "failed")
MAIL_KINDS = ("invitation", "reminder", "decision", "account", "other")


class Mail(Base):
    """One e-mail to send; a Celery task sends it after the commit, a sweep re-sends the late."""

    __tablename__ = "mail"
    __table_args__ = (Index("ix_mail_status_id", "status", "id"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="other")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_at()
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
