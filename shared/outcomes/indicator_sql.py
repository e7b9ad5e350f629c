"""Set-based SQL per indicator; each query yields the five columns of CELL_COLUMNS."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    CTE,
    BigInteger,
    Column,
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    Float,
    FromClause,
    Index,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    cast,
    distinct,
    exists,
    extract,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.schema import CreateIndex, CreateTable

from outcomes.models import (
    Application,
    AuditingFirm,
    Certificate,
    ExternalCertification,
    Facility,
    Meeting,
    Member,
    Perturbation,
    RecordKey,
    SurveyAnswer,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    Training,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)

if TYPE_CHECKING:
    from outcomes.catalogue import BuildContext

CELL_COLUMNS = ("period", "breakdown", "category", "value", "contributors")
SUBMITTED = ("submitted", "accepted")
# Yearly series start here; years without data yield no cell, so an early start costs nothing.
FIRST_YEAR = 2012
TRAINED_SINCE = date(2017, 1, 1)
MEETINGS_SINCE = date(2016, 1, 1)
# Disclosure control by the cell key method (README, "Disclosure control"): a cell's key is the
# sum of its rows' keys modulo KEY_RANGE; the perturbation table gives each key a factor in
# (-1, 1), scaled by MAGNITUDE_NOISE times the cell's largest single value (sums; divided by the
# members for means and medians) or by COUNT_NOISE members (counts and shares of members).
KEY_RANGE = 256
RECORD_KEYS = 250  # a member's record key is drawn from 1..RECORD_KEYS
MAGNITUDE_NOISE = 0.1
COUNT_NOISE = 1.0

Cells = Callable[["BuildContext"], list[Select]]

certificates = Certificate.__table__
facilities = Facility.__table__
members = Member.__table__
firms = AuditingFirm.__table__


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


def row_tag(unit_id: ColumnElement, key: ColumnElement, value=None) -> ColumnElement[int]:
    """Return a contributing row's tag: unique per unit, its row key (1..250) in the low bits."""
    # The row key mixes the member's secret record key with the value (x1000, modulo a prime),
    # so a changed value usually moves the cell key too; it is never 0 modulo KEY_RANGE, so
    # adding or removing a row always moves it.
    # Numeric, not bigint: an answer of any size must not overflow (PostgreSQL would fail).
    thousandths = cast(func.round(func.coalesce(cast(value, Float), 0.0) * 1000), Numeric)
    scaled = 1 if value is None else func.abs(thousandths) % 241 + 1
    row_key = func.coalesce(key, 1) * scaled % 251
    return cast(unit_id, BigInteger) * KEY_RANGE + row_key


def cell_key(tags: ColumnElement) -> ColumnElement[int]:
    """Return a cell's key: the sum of its distinct rows' tags modulo KEY_RANGE."""
    return func.sum(distinct(tags)) % KEY_RANGE


def noisy_cell(period, breakdown, category, value, contributors, key, scale) -> list:
    """Label the columns of a member-reported cell: the five of `cell`, its key and noise scale."""
    return [
        *cell(period, breakdown, category, value, contributors),
        key.label("cell_key"),
        cast(scale, Float).label("scale"),
    ]


def protected(query: Select | CompoundSelect, ctx: BuildContext) -> Select:
    """Return a query's cells, each value moved by its cell key's factor times its scale."""
    q = query.subquery()
    columns = [q.c[name] for name in CELL_COLUMNS]
    if not ctx.perturb:
        return select(*columns)
    p = Perturbation.__table__.c
    noise = func.coalesce(p.factor * q.c.scale, 0.0)
    return select(*columns[:3], (q.c.value + noise).label("value"), q.c.contributors).select_from(
        q.outerjoin(Perturbation.__table__, p.cell_key == q.c.cell_key)
    )


def year_ends(ctx: BuildContext) -> Subquery:
    """Return a small calendar: each year up to the snapshot's and the day it ends (or as_of)."""
    rows = [
        select(
            literal(year, Integer).label("year"),
            literal(min(date(year, 12, 31), ctx.as_of), Date).label("ends"),
        )
        for year in range(FIRST_YEAR, ctx.as_of.year + 1)
    ]
    return union_all(*rows).subquery("years")


def valid_on(when: ColumnElement | date) -> ColumnElement[bool]:
    """Return whether a certificate is valid (issued, not expired, not withdrawn) on a day."""
    c = certificates.c
    return and_(
        c.issued_on <= when,
        c.expires_on >= when,
        or_(c.withdrawn_on.is_(None), c.withdrawn_on > when),
    )


def present_on(when: ColumnElement | date) -> ColumnElement[bool]:
    """Return whether a facility still existed (was not removed) on a day."""
    return or_(facilities.c.removed_on.is_(None), facilities.c.removed_on > when)


def covered_facilities() -> FromClause:
    """Return certificates joined to the facilities they cover."""
    return certificates.join(certificate_facility).join(facilities)


# --- certification ---------------------------------------------------------------------------


def certificate_cells(standard: str) -> Cells:
    """Return the cells of the certificates indicator of one standard."""

    def cells(ctx: BuildContext) -> list[Select]:
        c = certificates.c
        issued = and_(c.standard == standard, c.issued_on <= ctx.as_of)
        valid = and_(issued, valid_on(ctx.as_of))
        n, holders = func.count(distinct(c.id)), func.count(distinct(c.member_id))
        years = select(year_number(c.issued_on).label("year")).where(issued).distinct().subquery()
        country = facilities.c.country
        up_to_year = year_number(c.issued_on) <= years.c.year
        klass = members.c.membership_class
        return [
            select(*cell("all", "total", "", n, holders)).where(issued),
            select(*cell("all", "status", "valid", n, holders)).where(valid),
            select(*cell("all", "kind", c.kind, n, holders)).where(issued).group_by(c.kind),
            select(*cell("all", "country", country, n, holders))
            .select_from(covered_facilities())
            .where(issued)
            .group_by(country),
            select(*cell("all", "membership_class", klass, n, holders))
            .select_from(certificates.join(members))
            .where(issued)
            .group_by(klass),
            # The yearly series is cumulative: every certificate issued up to each year's end.
            select(*cell(as_text(years.c.year), "total", "", n, holders))
            .select_from(years.join(certificates, up_to_year))
            .where(issued)
            .group_by(years.c.year),
        ]

    return cells


def certified_country_cells(ctx: BuildContext) -> list[Select]:
    """Return distinct countries of facilities covered by a valid certificate, now and yearly."""
    c, f = certificates.c, facilities.c
    years = year_ends(ctx)
    now = and_(valid_on(ctx.as_of), present_on(ctx.as_of))
    then = and_(valid_on(years.c.ends), present_on(years.c.ends))
    n, holders = func.count(distinct(f.country)), func.count(distinct(c.member_id))
    return [
        select(*cell("all", "total", "", n, holders)).select_from(covered_facilities()).where(now),
        select(*cell("all", "standard", c.standard, n, holders))
        .select_from(covered_facilities())
        .where(now)
        .group_by(c.standard),
        # Per country: how many certified facilities operate there.
        select(*cell("all", "country", f.country, func.count(distinct(f.id)), holders))
        .select_from(covered_facilities())
        .where(now)
        .group_by(f.country),
        select(*cell(as_text(years.c.year), "total", "", n, holders))
        .select_from(years, covered_facilities())
        .where(then)
        .group_by(years.c.year),
    ]


def external_leverage_cells(ctx: BuildContext) -> list[Select]:
    """Return the share of PS certificates leveraging at least one recognised external scheme."""
    c, ce, e = certificates.c, certificate_external.c, ExternalCertification.__table__.c
    recognised_on_issue = and_(
        e.valid_from <= c.issued_on, or_(e.valid_until.is_(None), e.valid_until >= c.issued_on)
    )
    leverages = exists().where(
        ce.certificate_id == c.id, e.id == ce.external_certification_id, recognised_on_issue
    )
    share = 100.0 * func.avg(case((leverages, 1.0), else_=0.0))
    holders = func.count(distinct(c.member_id))
    issued = and_(c.standard == "PS", c.issued_on <= ctx.as_of)
    all_ps = select(func.count()).select_from(certificates).where(issued).scalar_subquery()
    years = year_ends(ctx)
    return [
        select(*cell("all", "total", "", share, holders)).where(issued),
        select(*cell("all", "status", "valid", share, holders)).where(issued, valid_on(ctx.as_of)),
        # Per scheme: the share of all PS certificates that leverage it.
        select(
            *cell(
                "all",
                "external",
                e.code,
                100.0 * cast(func.count(distinct(c.id)), Float) / all_ps,
                holders,
            )
        )
        .select_from(certificates.join(certificate_external).join(ExternalCertification.__table__))
        .where(issued, recognised_on_issue)
        .group_by(e.code),
        select(*cell(as_text(years.c.year), "total", "", share, holders))
        .select_from(years.join(certificates, c.issued_on <= years.c.ends))
        .where(issued)
        .group_by(years.c.year),
    ]


def people_cells(ctx: BuildContext) -> list[Select]:
    """Return the people working in facilities covered by a valid PS certificate."""
    c, f, k = certificates.c, facilities.c, RecordKey.__table__.c
    years = year_ends(ctx)
    owned = covered_facilities().join(members, members.c.id == f.member_id)
    owned = owned.outerjoin(RecordKey.__table__, k.member_id == f.member_id)
    tag = row_tag(f.id, k.key, f.people).label("tag")
    # Each facility counts once, however many valid certificates cover it.
    now = (
        select(f.id, f.member_id, f.country, f.people, members.c.membership_class, tag)
        .select_from(owned)
        .where(c.standard == "PS", valid_on(ctx.as_of), present_on(ctx.as_of))
        .distinct()
        .subquery()
    )
    yearly = (
        select(years.c.year, f.id, f.member_id, f.people, tag)
        .select_from(years, owned)
        .where(c.standard == "PS", valid_on(years.c.ends), present_on(years.c.ends))
        .distinct()
        .subquery()
    )

    def people(src: Subquery) -> tuple[ColumnElement, ...]:
        # A facility's headcount is confidential: noise scaled to the largest one in the cell.
        scale = MAGNITUDE_NOISE * func.max(func.abs(src.c.people))
        owners = func.count(distinct(src.c.member_id))
        return func.coalesce(func.sum(src.c.people), 0), owners, cell_key(src.c.tag), scale

    klass = now.c.membership_class
    queries = [
        select(*noisy_cell("all", "total", "", *people(now))),
        select(*noisy_cell("all", "country", now.c.country, *people(now))).group_by(now.c.country),
        select(*noisy_cell("all", "membership_class", klass, *people(now))).group_by(klass),
        select(*noisy_cell(as_text(yearly.c.year), "total", "", *people(yearly))).group_by(
            yearly.c.year
        ),
    ]
    return [protected(query, ctx) for query in queries]


# --- auditing firms --------------------------------------------------------------------------


def accredited_on(when: ColumnElement | date) -> ColumnElement[bool]:
    """Return whether an auditing firm was accredited on a day."""
    a = firms.c
    return and_(
        a.accredited_on <= when,
        or_(a.accreditation_ends_on.is_(None), a.accreditation_ends_on >= when),
    )


def auditing_firm_cells(ctx: BuildContext) -> list[Select]:
    """Return currently accredited auditing firms, by country of operation and yearly."""
    a, fc = firms.c, auditing_firm_country.c
    years = year_ends(ctx)
    n = func.count(distinct(a.id))
    return [
        select(*cell("all", "total", "", n, n)).where(accredited_on(ctx.as_of)),
        select(*cell("all", "country", fc.country, n, n))
        .select_from(firms.join(auditing_firm_country))
        .where(accredited_on(ctx.as_of))
        .group_by(fc.country),
        select(*cell(as_text(years.c.year), "total", "", n, n))
        .select_from(years, firms)
        .where(accredited_on(years.c.ends))
        .group_by(years.c.year),
    ]


def auditing_firm_country_cells(ctx: BuildContext) -> list[Select]:
    """Return the distinct countries where currently accredited firms operate, and yearly."""
    a, fc = firms.c, auditing_firm_country.c
    years = year_ends(ctx)
    n, firm_count = func.count(distinct(fc.country)), func.count(distinct(a.id))
    operating = firms.join(auditing_firm_country)
    return [
        select(*cell("all", "total", "", n, firm_count))
        .select_from(operating)
        .where(accredited_on(ctx.as_of)),
        select(*cell(as_text(years.c.year), "total", "", n, firm_count))
        .select_from(years, operating)
        .where(accredited_on(years.c.ends))
        .group_by(years.c.year),
    ]


# --- training and governance -----------------------------------------------------------------


def training_cells(roles: Sequence[str]) -> Cells:
    """Return the cells counting distinct people of some roles trained since 2017."""

    def cells(ctx: BuildContext) -> list[Select]:
        t = Training.__table__.c
        years = year_ends(ctx)
        since = and_(t.role.in_(roles), t.completed_on >= TRAINED_SINCE)
        done = and_(since, t.completed_on <= ctx.as_of)
        n = func.count(distinct(t.person_key))
        # Everyone trained between 2017 and a day is everyone whose first course since 2017
        # ended by then: one pass finds each person's first day, where counting the distinct
        # people up to each year's end sorted every year's rows again (28 s at 5M trainings).
        firsts = (
            select(func.min(t.completed_on).label("day")).where(since).group_by(t.person_key)
        ).subquery()
        per_day = (
            select(firsts.c.day, func.count().label("people")).group_by(firsts.c.day).cte("per_day")
        )
        people = cast(func.coalesce(func.sum(per_day.c.people), 0), Integer)
        totals = union_all(
            select(*cell("all", "total", "", people, people)).where(per_day.c.day <= ctx.as_of),
            # Cumulative: everyone trained between 2017 and each year's end.
            select(*cell(as_text(years.c.year), "total", "", people, people))
            .select_from(years.join(per_day, per_day.c.day <= years.c.ends))
            .group_by(years.c.year),
        ).subquery()
        queries = [
            select(totals),
            select(*cell("all", "course", t.course, n, n)).where(done).group_by(t.course),
        ]
        if len(roles) > 1:
            queries.append(select(*cell("all", "role", t.role, n, n)).where(done).group_by(t.role))
        return queries

    return cells


def meeting_cells(body: str) -> Cells:
    """Return the cells counting one governance body's meetings since 2016, and per year."""

    def cells(ctx: BuildContext) -> list[Select]:
        g = Meeting.__table__.c
        held = and_(g.body == body, g.held_on >= MEETINGS_SINCE, g.held_on <= ctx.as_of)
        n = func.count(g.id)
        year = year_number(g.held_on)
        return [
            select(*cell("all", "total", "", n, n)).where(held),
            select(*cell(as_text(year), "total", "", n, n)).where(held).group_by(year),
        ]

    return cells


# --- membership ------------------------------------------------------------------------------


def member_cells(ctx: BuildContext) -> list[Select]:
    """Return the cells of the members indicator: active members by class and by year."""
    m = members.c
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
        .select_from(years.join(members, active_in_year))
        .group_by(years.c.year),
    ]


def application_cells(ctx: BuildContext) -> list[Select]:
    """Return membership applications received up to the snapshot date, by status and yearly."""
    a = Application.__table__.c
    # created_at is a timestamp: everything before the next day's midnight counts.
    received = a.created_at < datetime.combine(ctx.as_of + timedelta(days=1), time(), UTC)
    n = func.count(a.id)
    year = year_number(a.created_at)
    return [
        select(*cell("all", "total", "", n, n)).where(received),
        select(*cell("all", "status", a.status, n, n)).where(received).group_by(a.status),
        select(*cell("all", "membership_class", a.membership_class, n, n))
        .where(received)
        .group_by(a.membership_class),
        select(*cell("all", "country", a.country, n, n)).where(received).group_by(a.country),
        select(*cell(as_text(year), "total", "", n, n)).where(received).group_by(year),
    ]


# --- surveys ---------------------------------------------------------------------------------


def members_per_survey_year(among: Sequence[int] | None = None) -> Subquery:
    """Return, per reporting year with an open or closed survey, the members active that year.

    `among` lists the years wanted (the others are not counted, which costs per year).
    """
    m = members.c
    years = select(SurveyDefinition.year.label("year")).where(
        SurveyDefinition.status.in_(("open", "closed"))
    )
    if among is not None:
        years = years.where(SurveyDefinition.year.in_(among))
    years_sq = years.distinct().subquery()
    active = and_(
        year_number(m.joined_on) <= years_sq.c.year,
        or_(m.left_on.is_(None), year_number(m.left_on) >= years_sq.c.year),
    )
    # The years are distinct, so each member joins a year once: count(*) counts members without
    # the sort a DISTINCT needs (35 ms of each survey indicator's 50 ms at 10k members).
    return (
        select(years_sq.c.year, func.count().label("members"))
        .select_from(years_sq.join(members, active))
        .group_by(years_sq.c.year)
        .subquery()
    )


def survey_response_cells(_ctx: BuildContext) -> list[Select]:
    """Return the response rate per reporting year, with the coverage behind it."""
    r = SurveyResponse.__table__.c
    eligible = members_per_survey_year()
    # A response once accepted still counts while its member drafts or submits an amendment.
    responders = (
        select(r.year, func.count(distinct(r.member_id)).label("responders"))
        .where(or_(r.status.in_(SUBMITTED), r.accepted_revision.is_not(None)))
        .group_by(r.year)
        .subquery()
    )
    joined = eligible.outerjoin(responders, responders.c.year == eligible.c.year)
    answered = func.coalesce(responders.c.responders, 0)
    rate = 100.0 * cast(answered, Float) / eligible.c.members
    latest = select(func.max(eligible.c.year)).scalar_subquery()
    period = as_text(eligible.c.year)
    return [
        select(*cell(period, "total", "", rate, answered)).select_from(joined),
        select(*cell("all", "total", "", rate, answered))
        .select_from(joined)
        .where(eligible.c.year == latest),
        select(*cell(period, "coverage", "responding", answered, answered)).select_from(joined),
        select(
            *cell(period, "coverage", "members", eligible.c.members, eligible.c.members)
        ).select_from(joined),
    ]


# The accepted answers survey indicators read, staged once per build in a temporary table: one
# pass over the accepted revisions' answers for every question, not one per indicator, and each
# question's answers together on disk (inserted in key order) for its indicator's index scan.
staged_answers = Table(
    "staged_survey_answer",
    MetaData(),
    Column("question_key", SurveyAnswer.__table__.c.question_key.type),
    Column("year", Integer),
    Column("member_id", Integer),
    Column("membership_class", Member.__table__.c.membership_class.type),
    Column("value_number", Float),
    Column("value_text", SurveyAnswer.__table__.c.value_text.type),
    Column("tag", BigInteger),
    Column("count_tag", BigInteger),
    Index("ix_staged_survey_answer", "question_key", "year"),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
(staged_answers_index,) = staged_answers.indexes
# The members active in each staged year, counted once for every indicator's coverage.
staged_members = Table(
    "staged_survey_members",
    MetaData(),
    Column("year", Integer, primary_key=True),
    Column("members", Integer),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


class AnswerStage:
    """Some survey questions' accepted answers, and their years' members, staged as a build asks."""

    def __init__(self, conn: Connection, keys: Sequence[str]) -> None:
        self.conn, self.keys = conn, sorted(set(keys))
        self.years: frozenset[int] | None = frozenset()  # the years staged; None: every year
        self.repeated: list[str] = []  # the keys some definition asks in a per-facility repeat
        self.created = False

    def cover(self, years: frozenset[int] | None) -> None:
        """Stage the answers of `years` (None: every year) that are not staged yet."""
        if self.years is None or not self.keys:
            return
        if years is not None and years <= self.years:
            return
        first = not self.created
        if first:
            self.conn.execute(CreateTable(staged_answers))  # its index once it holds rows
            staged_members.create(self.conn)
            self.created = True
            self.repeated = _repeated(self.conn, self.keys)
        eligible = members_per_survey_year(None if years is None else sorted(years - self.years))
        counted = select(eligible.c.year, eligible.c.members)
        if years is None:
            chosen = SurveyResponse.year.not_in(sorted(self.years))
            counted = counted.where(eligible.c.year.not_in(sorted(self.years)))
        else:
            chosen = SurveyResponse.year.in_(sorted(years - self.years))
        rows = _accepted_answers(self.keys, self.repeated, chosen)
        self.conn.execute(insert(staged_answers).from_select(rows.selected_columns.keys(), rows))
        self.conn.execute(insert(staged_members).from_select(("year", "members"), counted))
        if first:
            # Built from the sorted rows in one pass: maintained row by row, it cost 4 s of the
            # 22 s a full build's 3.8M answers took to stage.
            self.conn.execute(CreateIndex(staged_answers_index))
        if self.conn.dialect.name == "postgresql":
            # Autovacuum never analyses a temporary table: without statistics the planner
            # would guess each indicator's share of the rows.
            self.conn.exec_driver_sql(f"ANALYZE {staged_answers.name}")
        self.years = None if years is None else self.years | years

    def drop(self) -> None:
        """Drop the staged rows, which SQLite would keep on the pooled connection."""
        if self.created:
            staged_answers.drop(self.conn)
            staged_members.drop(self.conn)
            self.created = False


def _repeated(conn: Connection, keys: Sequence[str]) -> list[str]:
    """Return the keys among `keys` that some definition asks in a per-facility repeat."""
    q = SurveyQuestion.__table__.c
    rows = conn.execute(select(q.key, q.logic).where(q.key.in_(keys)))
    return sorted({key for key, logic in rows if (logic or {}).get("repeat")})


def _accepted_answers(
    keys: Sequence[str], repeated: Sequence[str], chosen: ColumnElement[bool]
) -> Select | CompoundSelect:
    """Return the usable answers to some questions: each response's latest accepted revision.

    One row per response and question, in key and year order: a per-facility repeat's answers
    (those of `repeated`) summed over the member's facilities, so that the member, never one of
    its facilities, is the contributor that disclosure control and coverage count.
    """
    r, v, a = SurveyResponse.__table__.c, SurveyRevision.__table__.c, SurveyAnswer.__table__.c
    q = SurveyQuestion.__table__.c
    within_bounds = and_(
        or_(q.minimum.is_(None), a.value_number.is_(None), a.value_number >= q.minimum),
        or_(q.maximum.is_(None), a.value_number.is_(None), a.value_number <= q.maximum),
    )
    k = RecordKey.__table__.c

    def accepted(asked: Sequence[str]) -> FromClause:
        return (
            SurveyResponse.__table__.join(
                SurveyRevision.__table__,
                # Not the current revision: a later draft or submission awaits staff.
                and_(v.response_id == r.id, v.number == r.accepted_revision),
            )
            .join(
                SurveyAnswer.__table__,
                and_(a.revision_id == v.id, a.question_key.in_(asked)),
            )
            # Only answers to a question of the response's own definition count.
            .join(
                SurveyQuestion.__table__,
                and_(q.definition_id == r.definition_id, q.key == a.question_key),
            )
            .join(members, members.c.id == r.member_id)
            .outerjoin(RecordKey.__table__, k.member_id == r.member_id)
        )

    flat = (
        select(
            a.question_key,
            r.year,
            r.member_id,
            members.c.membership_class,
            a.value_number,
            a.value_text,
            row_tag(r.member_id, k.key, a.value_number).label("tag"),
            row_tag(r.member_id, k.key).label("count_tag"),
        )
        .select_from(accepted(keys))
        .where(within_bounds, a.facility_id.is_(None), chosen)
    )
    if not repeated:
        # No repeat among the keys (the common case): the plain scan, with no union to sort.
        return flat.order_by(a.question_key, r.year)
    # Each facility's answer is checked against the bounds before it joins its member's sum.
    total = func.sum(a.value_number)
    per_member = (
        select(
            a.question_key,
            r.year,
            r.member_id,
            members.c.membership_class,
            total.label("value_number"),
            cast(null(), SurveyAnswer.__table__.c.value_text.type).label("value_text"),
            row_tag(r.member_id, k.key, total).label("tag"),
            row_tag(r.member_id, k.key).label("count_tag"),
        )
        .select_from(accepted(repeated))
        .where(within_bounds, a.facility_id.is_not(None), chosen)
        .group_by(r.id, a.question_key, r.year, r.member_id, members.c.membership_class, k.key)
    )
    rows = union_all(flat, per_member)
    return rows.order_by(rows.selected_columns.question_key, rows.selected_columns.year)


def _statistic(src: Subquery, how: str) -> ColumnElement:
    """Return the aggregate of the answers in src that a question's `aggregation` asks for."""
    value = src.c.value_number
    if how == "sum":
        return func.sum(value)
    if how == "mean":
        return func.avg(value)
    if how == "share_yes":
        return 100.0 * func.avg(case((value == 1, 1.0), else_=0.0))
    if how == "median":
        # Portable median: the mean of the one or two middle rows ranked by a window function.
        middle = or_(src.c.rn == (src.c.n + 1) // 2, src.c.rn == (src.c.n + 2) // 2)
        return func.avg(case((middle, value)))
    return func.count(src.c.member_id)


def _noise(src: Subquery, how: str) -> tuple[ColumnElement, ColumnElement]:
    """Return a survey cell's key and noise scale, for the aggregate `how` of the rows in src."""
    top, n = func.max(func.abs(src.c.value_number)), func.count(src.c.member_id)
    if how == "sum":
        return cell_key(src.c.tag), MAGNITUDE_NOISE * top
    if how in ("mean", "median"):
        return cell_key(src.c.tag), MAGNITUDE_NOISE * top / n
    if how == "share_yes":
        return cell_key(src.c.count_tag), 100.0 * COUNT_NOISE / cast(n, Float)
    return cell_key(src.c.count_tag), literal(COUNT_NOISE)


def _survey_group(answers: CTE, how: str, keys: tuple[str, ...]) -> Subquery:
    """Return the rows to aggregate for one grouping, ranked when the median needs it."""
    rows: Select = select(answers)
    if how == "median":
        part = [answers.c[k] for k in keys]
        rows = rows.add_columns(
            func.row_number().over(partition_by=part, order_by=answers.c.value_number).label("rn"),
            func.count().over(partition_by=part).label("n"),
        )
    return rows.subquery()


def survey_cells(key: str, how: str, choices: tuple[str, ...] = ()) -> Cells:
    """Return the cells of a survey-derived indicator: per year, latest year, by class, coverage.

    `choices` names the options of a select-many question, whose answer is stored as "a;b":
    its "answer" cells then count the members choosing each option. The cells read the answers
    an AnswerStage staged for the run.
    """

    def cells(ctx: BuildContext) -> list[Select]:
        s = staged_answers.c
        usable = select(staged_answers).where(s.question_key == key)
        if how == "count":
            usable = usable.where(or_(s.value_number.is_not(None), s.value_text.is_not(None)))
        elif how == "share_yes":
            usable = usable.where(s.value_number.in_((0.0, 1.0)))
        else:
            usable = usable.where(s.value_number.is_not(None))
        if ctx.survey_years is not None:
            usable = usable.where(s.year.in_(sorted(ctx.survey_years)))
        answers = usable.cte("answers")
        groupings = []
        for breakdown in ("total", "membership_class"):
            keys = ("year",) if breakdown == "total" else ("year", "membership_class")
            src = _survey_group(answers, how, keys)
            category = "" if breakdown == "total" else src.c.membership_class
            groupings.append(
                select(
                    *noisy_cell(
                        src.c.year,  # as a number here, as text in the cells below
                        breakdown,
                        category,
                        _statistic(src, how),
                        func.count(distinct(src.c.member_id)),
                        *_noise(src, how),
                    )
                ).group_by(*(src.c[k] for k in keys))
            )
        # The latest year's cells again as period "all": the same rows give the same cells.
        yearly = union_all(*groupings).cte("yearly")
        year, latest = yearly.c.period, select(func.max(answers.c.year)).scalar_subquery()
        figures = [yearly.c[name] for name in (*CELL_COLUMNS[1:], "cell_key", "scale")]
        queries = [
            select(as_text(year).label("period"), *figures),
            select(literal("all").label("period"), *figures).where(year == latest),
        ]
        text, member = answers.c.value_text, answers.c.member_id
        latest_year = answers.c.year == latest
        counted = (cell_key(answers.c.count_tag), literal(COUNT_NOISE))
        if how == "count" and not choices:
            queries.append(
                select(
                    *noisy_cell(
                        "all", "answer", text, func.count(), func.count(distinct(member)), *counted
                    )
                )
                .where(text.is_not(None), latest_year)
                .group_by(text)
            )
        if how == "count":
            # One cell per option of a select-many question: members whose ";"-joined answer
            # holds it (an option never counted twice for one member).
            chose = literal(";") + text + literal(";")
            queries += [
                select(
                    *noisy_cell(
                        "all",
                        "answer",
                        choice,
                        func.count(distinct(member)),
                        func.count(distinct(member)),
                        *counted,
                    )
                ).where(chose.contains(f";{choice};", autoescape=True), latest_year)
                for choice in choices
            ]
        # Coverage beside every figure: "based on N of M members"; public, so never perturbed.
        # The members answering a year are the contributors of its total cell.
        unperturbed = (cast(null(), BigInteger), literal(0.0))
        answered, eligible = yearly.c.contributors, staged_members.c
        totals = yearly.join(staged_members, eligible.year == year)
        period = as_text(year)
        queries += [
            select(
                *noisy_cell(period, "coverage", "answered", answered, answered, *unperturbed)
            ).where(yearly.c.breakdown == "total"),
            select(
                *noisy_cell(
                    period, "coverage", "members", eligible.members, eligible.members, *unperturbed
                )
            )
            .select_from(totals)
            .where(yearly.c.breakdown == "total"),
        ]
        return [protected(union_all(*queries), ctx)]

    return cells
