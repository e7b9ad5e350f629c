"""Organisations, their people, API tokens, applications and the audit log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.models.base import Base, created_at, utcnow

MEMBERSHIP_CLASSES = (
    "Production & Transformation",
    "Industrial Users",
    "Civil Society",
    "Downstream Supporters",
    "Associations",
    "General Supporters",
)
# Only full members of these classes may hold certificates (DESIGN.md §3).
CERTIFIABLE_CLASSES = ("Production & Transformation", "Industrial Users")


class Member(Base):
    """An organisation admitted to membership."""

    __tablename__ = "member"
    id: Mapped[int] = mapped_column(primary_key=True)
    # What imports name the member by (name too, when unique); optional, e.g. ASI's "M-0042".
    code: Mapped[str | None] = mapped_column(String(40), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    membership_class: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    joined_on: Mapped[date]
    left_on: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = created_at()


class User(Base):
    """A person who logs in: staff, or someone acting for one member."""

    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10))  # "staff" or "member"
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at()
    # Staff who manage accounts (reset passwords, other staff's included).
    is_admin: Mapped[bool] = mapped_column(default=False)
    # A one-time password (from an approval or a reset) works until then, to set a new one.
    password_expires_at: Mapped[datetime | None]
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Second factor: a TOTP secret once confirmed, and argon2 hashes of unused recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The 30-second step of the last code accepted: a code works once, even inside its window.
    totp_last_step: Mapped[int | None]
    recovery_codes: Mapped[list] = mapped_column(default=list)
    # Sign-in throttling per account: failures in a row, and until when the account waits.
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser; the cookie holds a secret whose digest is the id, so it can end."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user_id", "user_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = created_at()
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A session that signed in with a password but has not yet given its second factor.
    pending_factor: Mapped[bool] = mapped_column(default=False)


class ApiToken(Base):
    """A bearer token for scripts; only its SHA-256 digest is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class Application(Base):
    """A membership application and its review decision."""

    __tablename__ = "application"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    organisation: Mapped[str] = mapped_column(String(200))
    membership_class: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(254))
    details: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="received")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(String(2000))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    created_at: Mapped[datetime] = created_at()


class AuditLog(Base):
    """One staff action or submission, kept for ever."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = created_at()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict] = mapped_column(default=dict)
