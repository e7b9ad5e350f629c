"""Reviewing survey responses with context: filters, the last accepted revision, last year."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.models import (
    MEMBERSHIP_CLASSES,
    RESPONSE_STATUSES,
    AuditLog,
    Member,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.schemas import REPORTING_YEARS, Country


class ReviewFilterSchema(Schema):
    """Which responses staff list; a filter left empty filters nothing."""

    status = fields.String(validate=validate.OneOf([s for s in RESPONSE_STATUSES if s != "draft"]))
    year = fields.Integer(validate=REPORTING_YEARS)
    membership_class = fields.String(validate=validate.OneOf(MEMBERSHIP_CLASSES))
    country = Country()


def listed_responses(session: Session, filters: dict[str, Any]) -> list[Any]:
    """Return (response, member name) rows matching the filters, waiting ones first."""
    query = (
        select(SurveyResponse, Member.name)
        .join(Member, Member.id == SurveyResponse.member_id)
        .where(SurveyResponse.status != "draft")
        .order_by((SurveyResponse.status != "submitted"), SurveyResponse.year.desc(), Member.name)
    )
    for name in ("status", "year"):
        if name in filters:
            query = query.where(getattr(SurveyResponse, name) == filters[name])
    for name in ("membership_class", "country"):
        if name in filters:
            query = query.where(getattr(Member, name) == filters[name])
    return list(session.execute(query))


def answers_in_context(session: Session, response: SurveyResponse) -> list[dict[str, Any]]:
    """Return each question's answer now, in the last accepted revision and the year before."""
    now = _revision_answers(session, response.id, response.current_revision)
    accepted = _revision_answers(session, response.id, _last_accepted(session, response))
    before = session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.member_id == response.member_id,
            SurveyResponse.year == response.year - 1,
            SurveyResponse.status == "accepted",
        )
    ).first()
    last_year = _revision_answers(session, before.id, before.current_revision) if before else {}
    return [
        {
            "key": key,
            "now": now.get(key),
            "accepted": accepted.get(key),
            "changed": bool(accepted) and accepted.get(key) != now.get(key),
            "last_year": last_year.get(key),
            "flagged": outlier(now.get(key), last_year.get(key)),
        }
        for key in sorted(set(now) | set(accepted) | set(last_year))
    ]


# An answer is flagged when it differs from the member's accepted answer for the year before by
# more than this factor either way (or one of the two is zero and the other is not).
OUTLIER_FACTOR = 3


def outlier(now: Any, last_year: Any) -> bool:
    """Tell whether a numeric answer moved implausibly far from the previous year's."""
    numbers = (int, float)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in (now, last_year)):
        return False
    if now == 0 or last_year == 0:
        return now != last_year
    ratio = abs(now / last_year)
    return now * last_year < 0 or not 1 / OUTLIER_FACTOR <= ratio <= OUTLIER_FACTOR


def _last_accepted(session: Session, response: SurveyResponse) -> int | None:
    """Return the number of the response's revision staff accepted last, if any."""
    if response.status == "accepted":
        return response.current_revision
    details = session.scalar(
        select(AuditLog.details)
        .where(
            AuditLog.action == "survey.accepted",
            AuditLog.object_type == "survey_response",
            AuditLog.object_id == str(response.id),
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    return details.get("revision") if details else None


def _revision_answers(session: Session, response_id: int, number: int | None) -> dict[str, Any]:
    if number is None:
        return {}
    answers = session.scalar(
        select(SurveyRevision.answers).where(
            SurveyRevision.response_id == response_id, SurveyRevision.number == number
        )
    )
    return answers or {}
