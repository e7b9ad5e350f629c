"""Set-based SQL per indicator; each query yields the five columns of CELL_COLUMNS."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    String,
    and_,
    cast,
    distinct,
    extract,
    func,
    literal,
    or_,
    select,
)

from outcomes.models import (
    Certificate,
    Facility,
    Member,
    SurveyDefinition,
    SurveyResponse,
    certificate_facility,
)

if TYPE_CHECKING:
    from outcomes.catalogue import BuildContext

CELL_COLUMNS = ("period", "breakdown", "category", "value", "contributors")
SUBMITTED = ("submitted", "accepted")


def year_number(column: ColumnElement) -> ColumnElement[int]:
    """Return the calendar year of a date column as an integer, on any dialect."""
    return cast(extract("year", column), Integer)


def as_text(column: ColumnElement) -> ColumnElement[str]:
    """Return a column as text, for the period and category columns."""
    return cast(column, String)


def cell(period, breakdown, category, value, contributors) -> list[ColumnElement]:
    """Label five expressions as the columns of an indicator cell."""
    parts = [
        period if isinstance(period, ColumnElement) else literal(period),
        literal(breakdown),
        category if isinstance(category, ColumnElement) else literal(category),
        cast(value, Float),
        contributors,
    ]
    return [part.label(name) for part, name in zip(parts, CELL_COLUMNS, strict=True)]


def certificate_cells(standard: str) -> Callable[[BuildContext], list[Select]]:
    """Return the cells of the certificates indicator of one standard."""

    def cells(ctx: BuildContext) -> list[Select]:
        c = Certificate.__table__.c
        issued = and_(c.standard == standard, c.issued_on <= ctx.as_of)
        valid = and_(
            issued,
            c.expires_on >= ctx.as_of,
            or_(c.withdrawn_on.is_(None), c.withdrawn_on > ctx.as_of),
        )
        n, members = func.count(distinct(c.id)), func.count(distinct(c.member_id))
        years = select(year_number(c.issued_on).label("year")).where(issued).distinct().subquery()
        country = Facility.__table__.c.country
        up_to_year = year_number(c.issued_on) <= years.c.year
        return [
            select(*cell("all", "total", "", n, members)).where(issued),
            select(*cell("all", "status", "valid", n, members)).where(valid),
            select(*cell("all", "kind", c.kind, n, members)).where(issued).group_by(c.kind),
            select(*cell("all", "country", country, n, members))
            .select_from(Certificate.__table__.join(certificate_facility).join(Facility.__table__))
            .where(issued)
            .group_by(country),
            # The yearly series is cumulative: every certificate issued up to each year's end.
            select(*cell(as_text(years.c.year), "total", "", n, members))
            .select_from(years.join(Certificate.__table__, up_to_year))
            .where(issued)
            .group_by(years.c.year),
        ]

    return cells


def member_cells(ctx: BuildContext) -> list[Select]:
    """Return the cells of the members indicator: active members by class and by year."""
    m = Member.__table__.c
    active = and_(m.joined_on <= ctx.as_of, or_(m.left_on.is_(None), m.left_on > ctx.as_of))
    n = func.count(distinct(m.id))
    years = select(year_number(m.joined_on).label("year")).where(active).distinct().subquery()
    active_in_year = and_(
        year_number(m.joined_on) <= years.c.year,
        or_(m.left_on.is_(None), year_number(m.left_on) > years.c.year),
    )
    return [
        select(*cell("all", "total", "", n, n)).where(active),
        select(*cell("all", "membership_class", m.membership_class, n, n))
        .where(active)
        .group_by(m.membership_class),
        select(*cell("all", "country", m.country, n, n)).where(active).group_by(m.country),
        select(*cell(as_text(years.c.year), "total", "", n, n))
        .select_from(years.join(Member.__table__, active_in_year))
        .group_by(years.c.year),
    ]


def survey_response_cells(_ctx: BuildContext) -> list[Select]:
    """Return the response rate per reporting year, with the coverage behind it."""
    m, r = Member.__table__.c, SurveyResponse.__table__.c
    years_sq = (
        select(SurveyDefinition.year.label("year"))
        .where(SurveyDefinition.status.in_(("open", "closed")))
        .distinct()
        .subquery()
    )
    members = (
        select(years_sq.c.year, func.count(distinct(m.id)).label("members"))
        .select_from(
            years_sq.join(
                Member.__table__,
                and_(
                    year_number(m.joined_on) <= years_sq.c.year,
                    or_(m.left_on.is_(None), year_number(m.left_on) >= years_sq.c.year),
                ),
            )
        )
        .group_by(years_sq.c.year)
        .subquery()
    )
    responders = (
        select(r.year, func.count(distinct(r.member_id)).label("responders"))
        .where(r.status.in_(SUBMITTED))
        .group_by(r.year)
        .subquery()
    )
    joined = members.outerjoin(responders, responders.c.year == members.c.year)
    answered = func.coalesce(responders.c.responders, 0)
    rate = 100.0 * cast(answered, Float) / members.c.members
    latest = select(func.max(members.c.year)).scalar_subquery()
    period = as_text(members.c.year)
    return [
        select(*cell(period, "total", "", rate, answered)).select_from(joined),
        select(*cell("all", "total", "", rate, answered))
        .select_from(joined)
        .where(members.c.year == latest),
        select(*cell(period, "coverage", "responding", answered, answered)).select_from(joined),
        select(
            *cell(period, "coverage", "members", members.c.members, members.c.members)
        ).select_from(joined),
    ]
