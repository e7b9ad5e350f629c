"""Data-quality checks: inconsistent rows are counted and left out of figures, never fatal."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, and_, case, exists, func, not_, or_, select

from outcomes.indicator_sql import present_on, valid_on
from outcomes.models import (
    Certificate,
    Facility,
    Meeting,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    Training,
    certificate_facility,
)

# The checks of accepted survey answers, counted per reporting year in one pass.
SURVEY_CHECKS = ("survey_answers_outside_definition", "survey_answers_out_of_bounds")


def _survey_counts() -> Select:
    """Return per reporting year the accepted answers each survey check flags, one column each."""
    r, v, a = SurveyResponse.__table__.c, SurveyRevision.__table__.c, SurveyAnswer.__table__.c
    q = SurveyQuestion.__table__.c
    # A definition asks a key at most once, so each answer meets one question or none.
    answers = (
        SurveyAnswer.__table__.join(SurveyRevision.__table__, v.id == a.revision_id)
        .join(
            SurveyResponse.__table__,
            and_(r.id == v.response_id, r.accepted_revision == v.number),
        )
        .outerjoin(
            SurveyQuestion.__table__,
            and_(q.definition_id == r.definition_id, q.key == a.question_key),
        )
    )
    outside = q.id.is_(None)
    out_of_bounds = and_(
        q.id.is_not(None),
        a.value_number.is_not(None),
        or_(a.value_number < q.minimum, a.value_number > q.maximum),
    )
    outside_name, bounds_name = SURVEY_CHECKS
    return (
        select(
            r.year,
            func.count(case((outside, 1))).label(outside_name),
            func.count(case((out_of_bounds, 1))).label(bounds_name),
        )
        .select_from(answers)
        .group_by(r.year)
    )


def _checks(as_of: date) -> dict[str, tuple[str, Select | None]]:
    """Return each check's description and counting query (survey checks: `_survey_counts`)."""
    c, cf, f = Certificate.__table__.c, certificate_facility.c, Facility.__table__.c
    count = func.count()
    return {
        "certificates_covering_removed_facilities": (
            "valid certificates that cover a facility removed by the snapshot date "
            "(the facility is left out of countries and people)",
            select(func.count(func.distinct(c.id)))
            .select_from(Certificate.__table__.join(certificate_facility).join(Facility.__table__))
            .where(valid_on(as_of), not_(present_on(as_of))),
        ),
        "certificates_without_facilities": (
            "certificates that cover no facility (they count as certificates only)",
            select(count)
            .select_from(Certificate.__table__)
            .where(~exists().where(cf.certificate_id == c.id)),
        ),
        "certificates_expiring_before_issue": (
            "certificates whose expiry date precedes their issue date (never valid)",
            select(count).select_from(Certificate.__table__).where(c.expires_on < c.issued_on),
        ),
        "facilities_with_negative_people": (
            "facilities with a negative number of people",
            select(count).select_from(Facility.__table__).where(f.people < 0),
        ),
        "survey_answers_outside_definition": (
            "accepted answers to a question their survey definition does not ask (left out)",
            None,
        ),
        "survey_answers_out_of_bounds": (
            "accepted answers outside their question's minimum or maximum (left out)",
            None,
        ),
        "trainings_in_the_future": (
            "trainings completed after the snapshot date (left out)",
            select(count)
            .select_from(Training.__table__)
            .where(Training.__table__.c.completed_on > as_of),
        ),
        "meetings_in_the_future": (
            "meetings held after the snapshot date (left out)",
            select(count).select_from(Meeting.__table__).where(Meeting.__table__.c.held_on > as_of),
        ),
    }


def data_quality(
    conn: Connection,
    as_of: date,
    *,
    base: dict[str, dict[str, Any]] | None = None,
    survey_years: frozenset[int] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """Count the inconsistent rows each check flags, with what that means for the figures.

    Survey checks count per reporting year. Given an earlier run's result in which only the
    accepted answers of `survey_years` have changed since, only those years are counted again.
    """
    queries = _checks(as_of)
    if base is not None and any(
        name not in base or (query is None and "by_year" not in base[name])
        for name, (_description, query) in queries.items()
    ):
        base = None  # an older run's result lacks a check, or its years
    survey = _survey_counts()
    by_year: dict[str, dict[str, int]] = {name: {} for name in SURVEY_CHECKS}
    if base is not None:
        survey = survey.where(SurveyResponse.year.in_(sorted(survey_years)))
        for name in SURVEY_CHECKS:
            kept = base[name]["by_year"].items()
            by_year[name] = {y: n for y, n in kept if int(y) not in survey_years}
    for row in conn.execute(survey).mappings():
        for name in SURVEY_CHECKS:
            if row[name]:
                by_year[name][str(row["year"])] = row[name]
    checks: dict[str, dict[str, Any]] = {}
    for name, (description, query) in queries.items():
        if query is None:
            checks[name] = {
                "count": sum(by_year[name].values()),
                "description": description,
                "by_year": dict(sorted(by_year[name].items())),
            }
            continue
        count = conn.scalar(query) if base is None else base[name]["count"]
        checks[name] = {"count": int(count or 0), "description": description}
    return checks
