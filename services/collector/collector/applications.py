"""Membership applications: receive them, and let staff approve or reject them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collector.changes import record_change
from outcomes.accounts import (
    AccountError,
    create_user,
    mail_set_password_link,
    temporary_password,
    user_by_email,
)
from outcomes.config import Settings
from outcomes.mail import queue_mail
from outcomes.models import Application, Facility, Member, User, utcnow

REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread on the phone


@dataclass
class Approval:
    """What approving an application created: the member, its account and a one-time password."""

    member: Member
    user: User
    password: str


class ApplicationError(Exception):
    """An application cannot be decided as asked."""


def new_reference() -> str:
    """Return a short, unguessable reference an applicant can quote."""
    return "APP-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))


def receive_application(session: Session, settings: Settings, data: dict[str, Any]) -> Application:
    """Record a validated application with a fresh reference."""
    application = Application(
        reference=new_reference(),
        organisation=data["organisation"],
        membership_class=data["membership_class"],
        country=data["country"],
        contact_name=data["contact_name"],
        contact_email=data["contact_email"].lower(),
        details={
            "facilities": data["facilities"],
            "external_certifications": [
                {**held, "valid_until": held["valid_until"] and held["valid_until"].isoformat()}
                for held in data["external_certifications"]
            ],
            "commitments": data["commitments"],
        },
    )
    session.add(application)
    session.flush()
    record_change(
        session,
        settings,
        actor_id=None,
        action="application.received",
        object_type="application",
        object_id=application.reference,
        details={"organisation": application.organisation},
        topic="applications",  # the published count of applications changes
        reason="application received",
    )
    return application


def application_by_reference(session: Session, reference: str) -> Application | None:
    """Return an application by its reference."""
    return session.scalars(select(Application).where(Application.reference == reference)).first()


def approve_application(
    session: Session, settings: Settings, application: Application, *, staff: User
) -> Approval:
    """Admit the applicant: record a member, its facilities and a member account."""
    _check_undecided(application)
    if user_by_email(session, application.contact_email) is not None:
        raise ApplicationError(
            f"An account for {application.contact_email} already exists; "
            "reject this application or ask the applicant for another contact address."
        )
    member = Member(
        name=application.organisation,
        membership_class=application.membership_class,
        country=application.country,
        joined_on=utcnow().date(),
    )
    session.add(member)
    session.flush()
    session.add_all(
        Facility(member_id=member.id, name=f["name"], country=f["country"], people=f["people"])
        for f in application.details.get("facilities", [])
    )
    password = temporary_password()
    try:
        user = create_user(
            session,
            email=application.contact_email,
            password=password,
            role="member",
            member_id=member.id,
            one_time=True,
        )
    except AccountError as error:
        raise ApplicationError(str(error)) from None
    application.member_id = member.id
    mail_set_password_link(
        session,
        settings,
        user,
        subject=f"Your membership is approved: set your password ({application.reference})",
        opening=(
            f"Dear {application.contact_name},\n\n{member.name} is now a member. Sign in to "
            "report your organisation's annual survey."
        ),
    )
    _decide(session, settings, application, staff=staff, status="approved", reason="")
    return Approval(member=member, user=user, password=password)


def reject_application(
    session: Session, settings: Settings, application: Application, *, staff: User, reason: str
) -> None:
    """Refuse an application with the reason the applicant will be told."""
    _check_undecided(application)
    if not reason.strip():
        raise ApplicationError("Give the reason for a rejection.")
    if len(reason.strip()) > 2000:
        raise ApplicationError("Keep the reason under 2,000 characters.")
    queue_mail(
        session,
        to=application.contact_email,
        subject=f"Your membership application {application.reference}",
        body=(
            f"Dear {application.contact_name},\n\nThe application of {application.organisation} "
            f"was not approved, for this reason:\n\n{reason.strip()}"
        ),
        kind="decision",
    )
    _decide(session, settings, application, staff=staff, status="rejected", reason=reason.strip())


def _check_undecided(application: Application) -> None:
    if application.status != "received":
        raise ApplicationError(
            f"Application {application.reference} is already {application.status}."
        )


def _decide(
    session: Session,
    settings: Settings,
    application: Application,
    *,
    staff: User,
    status: str,
    reason: str,
) -> None:
    """Record a decision, unless another one was recorded since the application was read."""
    # Conditional, so of two staff deciding at once one wins and the other is told: the
    # applicant never gets both a set-password link and a rejection.
    decided = session.execute(
        update(Application)
        .where(Application.id == application.id, Application.status == "received")
        .values(
            status=status, decided_by=staff.id, decided_at=utcnow(), decision_reason=reason or None
        )
    )
    if decided.rowcount != 1:  # type: ignore[attr-defined]
        raise ApplicationError(f"Application {application.reference} was decided meanwhile.")
    # A decision changes the applications by status; an approval also adds a member and its
    # facilities, read by many indicators, so it asks for everything (the default topic).
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action=f"application.{status}",
        object_type="application",
        object_id=application.reference,
        details={"reason": reason} if reason else {},
        topic="applications" if status == "rejected" else "aggregate",
        reason=f"application {status}",
    )
