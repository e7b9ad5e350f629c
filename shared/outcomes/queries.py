"""Queries used by more than one service; session first, keyword-only after."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.models import IndicatorValue, Snapshot, SurveyDefinition, SurveyQuestion
from outcomes.models.published import PUBLIC_STATUSES


def latest_snapshot(session: Session) -> Snapshot | None:
    """Return the newest finished build (released or not), or None before the first one."""
    query = (
        select(Snapshot)
        .where(Snapshot.status.in_(("built", *PUBLIC_STATUSES)))
        .order_by(Snapshot.id.desc())
    )
    return session.scalars(query.limit(1)).first()


def snapshot_values(session: Session, *, snapshot_id: int) -> list[IndicatorValue]:
    """Return every cell of a snapshot in a stable order."""
    query = (
        select(IndicatorValue)
        .where(IndicatorValue.snapshot_id == snapshot_id)
        .order_by(
            IndicatorValue.indicator,
            IndicatorValue.period,
            IndicatorValue.breakdown,
            IndicatorValue.category,
        )
    )
    return list(session.scalars(query))


def open_survey(session: Session, *, year: int) -> SurveyDefinition | None:
    """Return the newest open survey definition of a reporting year."""
    query = (
        select(SurveyDefinition)
        .where(SurveyDefinition.year == year, SurveyDefinition.status == "open")
        .order_by(SurveyDefinition.version.desc())
    )
    return session.scalars(query.limit(1)).first()


def survey_questions(session: Session, *, definition_id: int) -> list[SurveyQuestion]:
    """Return the questions of a survey definition in display order."""
    query = (
        select(SurveyQuestion)
        .where(SurveyQuestion.definition_id == definition_id)
        .order_by(SurveyQuestion.position)
    )
    return list(session.scalars(query))
