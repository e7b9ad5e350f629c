"""Small make_* factories for tests."""

from __future__ import annotations

from datetime import date, datetime
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from outcomes.accounts import create_token, create_user
from outcomes.models import (
    Certificate,
    Facility,
    IndicatorValue,
    Member,
    Snapshot,
    SurveyDefinition,
    SurveyQuestion,
    certificate_facility,
)

_numbers = count(1)


def make_member(session: Session, **overrides: Any) -> Member:
    """Add a member organisation."""
    number = next(_numbers)
    fields = {
        "name": f"Member {number}",
        "membership_class": "Production & Transformation",
        "country": "DE",
        "joined_on": date(2019, 1, 1),
    }
    member = Member(**{**fields, **overrides})
    session.add(member)
    session.flush()
    return member


def make_account(session: Session, *, role: str = "member", member: Member | None = None) -> str:
    """Add an account (a member's, by default) and return a fresh API token for it."""
    number = next(_numbers)
    if role == "member" and member is None:
        member = make_member(session)
    user = create_user(
        session,
        email=f"user{number}@example.org",
        password="correct horse battery",
        role=role,
        member_id=member.id if member else None,
    )
    return create_token(session, user=user, name="test")


def make_survey(session: Session, *, year: int = 2025, status: str = "open") -> SurveyDefinition:
    """Add a survey definition with an integer, a decimal and a yes/no question."""
    definition = SurveyDefinition(year=year, version=1, title=f"Survey {year}", status=status)
    session.add(definition)
    session.flush()
    questions = [
        ("employees", "integer", "people", 0, 500000, True, "sum"),
        ("women_share", "decimal", "%", 0, 100, True, "mean"),
        ("human_rights_policy", "boolean", "", None, None, False, "share_yes"),
    ]
    for position, (key, kind, unit, low, high, required, how) in enumerate(questions):
        session.add(
            SurveyQuestion(
                definition_id=definition.id,
                position=position,
                key=key,
                label=key,
                type=kind,
                unit=unit,
                minimum=low,
                maximum=high,
                required=required,
                aggregation=how,
                help_text="",
                choices=[],
            )
        )
    session.flush()
    return definition


def make_certificate(
    session: Session, *, member: Member, standard: str = "PS", country: str = "DE", **overrides: Any
) -> Certificate:
    """Add a certificate covering one new facility of the member."""
    number = next(_numbers)
    facility = Facility(member_id=member.id, name=f"Site {number}", country=country, people=100)
    session.add(facility)
    fields = {
        "number": f"C-{number}",
        "member_id": member.id,
        "standard": standard,
        "kind": "full",
        "audit_type": "initial",
        "issued_on": date(2020, 5, 1),
        "expires_on": date(2099, 5, 1),
    }
    certificate = Certificate(**{**fields, **overrides})
    session.add(certificate)
    session.flush()
    session.execute(
        certificate_facility.insert().values(certificate_id=certificate.id, facility_id=facility.id)
    )
    return certificate


def make_snapshot(
    session: Session,
    cells: list[tuple[str, str, str, str, float | None, int]],
    *,
    status: str = "released",
    as_of: date = date(2026, 1, 31),
    threshold: int = 3,
    **overrides: Any,
) -> Snapshot:
    """Add a snapshot holding cells (indicator, period, breakdown, category, value, contributors).

    A cell with fewer contributors than the threshold is stored as the aggregator stores it:
    suppressed, its value withheld.
    """
    fields = {
        "status": status,
        "trigger": "test",
        "as_of": as_of,
        "catalogue_version": "test",
        "checksum": f"test-{next(_numbers)}",
        "finished_at": datetime(as_of.year, as_of.month, as_of.day, 12, 0),
    }
    if status in ("released", "withdrawn"):
        number = next(_numbers)
        fields |= {
            "title": f"Release {number}",
            "release_number": number,
            "released_at": datetime(as_of.year, as_of.month, as_of.day, 13, 0),
        }
    snapshot = Snapshot(**{**fields, **overrides})
    session.add(snapshot)
    session.flush()
    for indicator, period, breakdown, category, value, contributors in cells:
        hidden = contributors < threshold
        session.add(
            IndicatorValue(
                snapshot_id=snapshot.id,
                indicator=indicator,
                period=period,
                breakdown=breakdown,
                category=category,
                value=None if hidden else value,
                contributors=contributors,
                suppressed=hidden,
            )
        )
    session.flush()
    return snapshot
