"""The mail outbox: one row per message, written in the transaction of the change it reports."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
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


class Campaign(Base):
    """A reporting campaign: one year's invitations, due date and reminder schedule."""

    __tablename__ = "campaign"
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    due_on: Mapped[date]
    # Days relative to the due date a reminder goes out: -7 is a week before, 3 three days after.
    reminder_days: Mapped[list] = mapped_column(default=list)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = created_at()


class CampaignInvite(Base):
    """One member invited to a campaign."""

    __tablename__ = "campaign_invite"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    invited_at: Mapped[datetime] = created_at()


class CampaignReminder(Base):
    """A reminder sent to one member for one day of the schedule; unique, so it is sent once."""

    __tablename__ = "campaign_reminder"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", "offset_days"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    offset_days: Mapped[int]
    sent_at: Mapped[datetime] = created_at()
