"""The incremental path equals a full rebuild cell for cell (property-based, both backends)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, update

from aggregator import build
from aggregator.build import build_snapshot
from outcomes.config import DatabaseTimeouts
from outcomes.db import get_engine, session_factory
from outcomes.indicator_sql import AnswerStage, staged_answers, staged_members
from outcomes.models import (
    Facility,
    IndicatorValue,
    Member,
    Snapshot,
    SurveyAnswer,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    certificate_facility,
)
from outcomes.queue import request_aggregation
from tests.conftest import empty_database
from tests.factories import make_certificate, make_member, make_survey

AS_OF = date(2026, 6, 30)
THRESHOLD = 2
COUNTRIES = ("DE", "FR", "NO")
CLASSES = ("Production & Transformation", "Industrial Users", "Civil Society")

members_st = st.tuples(
    st.sampled_from(CLASSES), st.sampled_from(COUNTRIES), st.integers(2016, 2026)
)
certificates_st = st.tuples(
    st.integers(0, 50),  # which member, modulo how many there are
    st.sampled_from(("PS", "CoC")),
    st.integers(2017, 2027),  # year issued
    st.integers(0, 4),  # years valid
    st.sampled_from(COUNTRIES),
    st.integers(0, 400),  # people at the site
)
YEARS = (2023, 2024, 2025)
answers_st = st.tuples(
    st.integers(0, 50),  # which member
    st.integers(0, 1000),  # employees
    st.booleans(),  # has a human rights policy
    st.sampled_from(("accepted", "submitted")),
    st.sampled_from(YEARS),
)
changes_st = st.one_of(
    st.tuples(st.just("survey"), st.lists(answers_st, min_size=1, max_size=4)),
    st.tuples(st.just("survey, no year"), st.lists(answers_st, min_size=1, max_size=4)),
    st.tuples(st.just("responses"), st.lists(answers_st, min_size=1, max_size=4)),
    st.tuples(st.just("certification"), st.lists(certificates_st, min_size=1, max_size=3)),
    st.tuples(st.just("membership"), st.lists(members_st, min_size=1, max_size=2)),
)


def pick_member(db, pick: int) -> Member:
    ids = db.scalars(select(Member.id).order_by(Member.id)).all()
    return db.get(Member, ids[pick % len(ids)])


def add_members(db, rows) -> None:
    for klass, country, joined in rows:
        make_member(db, membership_class=klass, country=country, joined_on=date(joined, 3, 1))


def add_certificates(db, rows) -> None:
    for pick, standard, issued, years, country, people in rows:
        certificate = make_certificate(
            db,
            member=pick_member(db, pick),
            standard=standard,
            country=country,
            issued_on=date(issued, 4, 1),
            expires_on=date(issued + years, 4, 1),
        )
        sites = select(certificate_facility.c.facility_id).where(
            certificate_facility.c.certificate_id == certificate.id
        )
        db.execute(update(Facility).where(Facility.id.in_(sites)).values(people=people))


def add_answers(db, rows) -> None:
    """Save a new revision of each picked member's response for a year (a new response if none)."""
    for pick, employees, policy, status, year in rows:
        member = pick_member(db, pick)
        definition = db.scalar(select(SurveyDefinition.id).where(SurveyDefinition.year == year))
        response = db.scalars(
            select(SurveyResponse).where(
                SurveyResponse.member_id == member.id, SurveyResponse.year == year
            )
        ).first() or SurveyResponse(
            member_id=member.id, year=year, definition_id=definition, current_revision=0
        )
        response.current_revision += 1
        response.status = status
        if status == "accepted":
            response.accepted_revision = response.current_revision
        db.add(response)
        db.flush()
        revision = SurveyRevision(
            response_id=response.id, number=response.current_revision, status=status, answers={}
        )
        db.add(revision)
        db.flush()
        for key, value in (("employees", employees), ("human_rights_policy", float(policy))):
            db.add(SurveyAnswer(revision_id=revision.id, question_key=key, value_number=value))
    db.flush()


def add_submissions(db, rows) -> None:
    """Submit new revisions of responses staff have not accepted (what topic "responses" says)."""
    responses = select(SurveyResponse.member_id, SurveyResponse.year)
    accepted = {
        tuple(row) for row in db.execute(responses.where(SurveyResponse.status == "accepted"))
    }
    picked = [(pick, number, policy, "submitted", year) for pick, number, policy, _, year in rows]
    add_answers(db, [row for row in picked if (pick_member(db, row[0]).id, row[4]) not in accepted])


def request(db, topic: str, rows) -> None:
    """Ask for a run as the collector does: staff decisions name their response's year."""
    if topic == "survey":
        for year in sorted({row[4] for row in rows}):
            request_aggregation(db, reason="decided", requested_by=None, topic=topic, year=year)
    else:
        topic = topic.removesuffix(", no year")  # an outbox row written before rows had years
        request_aggregation(db, reason=f"{topic} changed", requested_by=None, topic=topic)


def surveys(db) -> None:
    """Add one survey definition per reporting year."""
    for year in YEARS:
        make_survey(db, year=year, status="open" if year == YEARS[-1] else "closed")


CHANGE = {
    "survey": add_answers,
    "survey, no year": add_answers,
    "responses": add_submissions,
    "certification": add_certificates,
    "membership": add_members,
}


def cells(db, snapshot_id: int) -> set[tuple]:
    v = IndicatorValue
    columns = (v.indicator, v.period, v.breakdown, v.category, v.value, v.contributors)
    query = select(*columns, v.suppressed).where(v.snapshot_id == snapshot_id)
    return {tuple(row) for row in db.execute(query)}


# Each example builds three snapshots: no shrinking, which would take minutes on a failure.
@examples(
    max_examples=12,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
@given(
    members=st.lists(members_st, min_size=1, max_size=6),
    certificates=st.lists(certificates_st, max_size=6),
    answers=st.lists(answers_st, max_size=6),
    change=changes_st,
)
def test_an_incremental_run_publishes_exactly_what_a_full_rebuild_would(
    backend, members, certificates, answers, change
):
    empty_database(backend)
    url = backend.settings.database_url
    engine = get_engine(url)
    with session_factory(url)() as db:
        surveys(db)
        add_members(db, members)
        add_certificates(db, certificates)
        add_answers(db, answers)
        db.commit()
        build_snapshot(engine, trigger="first", as_of=AS_OF, force=True, threshold=THRESHOLD)
        topic, rows = change
        CHANGE[topic](db, rows)
        request(db, topic, rows)
        db.commit()

        incremental = build_snapshot(engine, trigger="inc", as_of=AS_OF, threshold=THRESHOLD)
        full = build_snapshot(engine, trigger="full", as_of=AS_OF, force=True, threshold=THRESHOLD)

        snapshot = db.get(Snapshot, incremental.snapshot_id)
        built = snapshot.data_quality["build"]
        assert built["mode"] == "incremental" and built["reused"]
        assert all(topic not in snapshot.indicators[code]["sources"] for code in built["reused"])
        assert bool(built["survey_years"]) == (topic == "survey")
        assert cells(db, incremental.snapshot_id) == cells(db, full.snapshot_id)
        whole = db.get(Snapshot, full.snapshot_id)
        assert snapshot.data_quality["checks"] == whole.data_quality["checks"]
        checksums = {db.get(Snapshot, s.snapshot_id).checksum for s in (incremental, full)}
        assert len(checksums) == 1


@pytest.mark.parametrize(
    ("answered", "year", "read"),
    [
        ((2024, 2025), 2024, [2024]),  # the latest year, 2025, keeps its cells
        ((2023, 2024), 2025, [2025]),  # a new latest year
        ((2023,), 2023, [2023]),  # the only year
    ],
)
def test_an_acceptance_recomputes_its_year_and_copies_the_others(
    settings, db, answered, year, read
):
    surveys(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 4)
    add_answers(db, [(p, 100 * (p + 1), True, "accepted", y) for p in range(3) for y in answered])
    db.commit()
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="first", as_of=AS_OF, force=True, threshold=THRESHOLD)
    decided = [(3, 50, False, "accepted", year)]
    add_answers(db, decided)
    request(db, "survey", decided)
    db.commit()

    run = build_snapshot(engine, trigger="accepted", as_of=AS_OF, threshold=THRESHOLD)
    full = build_snapshot(engine, trigger="full", as_of=AS_OF, force=True, threshold=THRESHOLD)

    assert db.get(Snapshot, run.snapshot_id).data_quality["build"]["survey_years"] == read
    assert cells(db, run.snapshot_id) == cells(db, full.snapshot_id)
    assert db.get(Snapshot, run.snapshot_id).checksum == db.get(Snapshot, full.snapshot_id).checksum


def test_when_an_acceptance_leaves_its_year_without_answers_the_year_before_is_the_latest(
    settings, db
):
    surveys(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 4)
    add_answers(db, [(p, 100 * (p + 1), True, "accepted", 2024) for p in range(3)])
    add_answers(db, [(3, 50, True, "accepted", 2025)])
    db.commit()
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="first", as_of=AS_OF, force=True, threshold=THRESHOLD)
    # The member's newly accepted count is out of bounds: 2025 has no employee count left.
    decided = [(3, 600_000, False, "accepted", 2025)]
    add_answers(db, decided)
    request(db, "survey", decided)
    db.commit()

    run = build_snapshot(engine, trigger="accepted", as_of=AS_OF, threshold=THRESHOLD)
    full = build_snapshot(engine, trigger="full", as_of=AS_OF, force=True, threshold=THRESHOLD)

    # Employees read 2024 again for their latest-year cells; the policy question only 2025.
    quality = db.get(Snapshot, run.snapshot_id).data_quality
    assert quality["build"]["survey_years"] == [2024, 2025]
    assert cells(db, run.snapshot_id) == cells(db, full.snapshot_id)
    assert db.get(Snapshot, run.snapshot_id).checksum == db.get(Snapshot, full.snapshot_id).checksum
    total = {
        period: value
        for period, value in db.execute(
            select(IndicatorValue.period, IndicatorValue.value).where(
                IndicatorValue.snapshot_id == run.snapshot_id,
                IndicatorValue.indicator == "survey_employees",
                IndicatorValue.breakdown == "total",
            )
        )
    }
    assert set(total) == {"2024", "all"} and total["all"] == total["2024"] is not None
    assert quality["checks"] == db.get(Snapshot, full.snapshot_id).data_quality["checks"]
    assert quality["checks"]["survey_answers_out_of_bounds"]["by_year"] == {"2025": 1}


def test_runs_by_year_build_on_each_other_and_a_change_without_a_year_reads_every_year(
    settings, db
):
    surveys(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 4)
    add_answers(db, [(p, 100 * (p + 1), True, "accepted", y) for p in range(3) for y in YEARS])
    db.commit()
    engine = get_engine(settings.database_url)

    def build(decided, *, without_year=False, force=False) -> tuple[int, dict]:
        if decided:
            add_answers(db, [decided])
            request(db, "survey", [decided])
        if without_year:  # beside a request written before outbox rows had years
            request_aggregation(db, reason="older", requested_by=None, topic="survey")
        db.commit()
        run = build_snapshot(
            engine, trigger="run", as_of=AS_OF, force=force, threshold=THRESHOLD
        ).snapshot_id
        return run, db.get(Snapshot, run).data_quality["build"]

    build(None, force=True)
    first, _ = build((3, 70, True, "accepted", 2024))
    second, on_first = build((0, 80, False, "accepted", 2025))
    full, _ = build(None, force=True)
    mixed, reading_all = build((1, 90, True, "accepted", 2023), without_year=True)
    again, _ = build(None, force=True)

    assert (on_first["reused_from"], on_first["survey_years"]) == (first, [2025])
    assert cells(db, second) == cells(db, full)
    assert (reading_all["mode"], reading_all["survey_years"]) == ("incremental", [])
    assert cells(db, mixed) == cells(db, again)
    assert len({db.get(Snapshot, s).checksum for s in (second, full)}) == 1


def test_answers_are_staged_once_each_from_accepted_revisions_and_dropped_after(settings, db):
    surveys(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 3)
    add_answers(db, [(p, 100 * (p + 1), True, "accepted", y) for p in range(3) for y in YEARS])
    add_answers(db, [(0, 5, False, "submitted", 2025)])  # awaits staff: not staged
    db.commit()
    engine = get_engine(settings.database_url)
    staged = staged_answers.c

    with engine.connect() as conn, conn.begin():
        stage = AnswerStage(conn, ["employees"])
        for years in ({2024}, {2024, 2025}, None, {2023}):
            stage.cover(None if years is None else frozenset(years))
        rows = conn.execute(
            select(staged.year, func.count(), func.sum(staged.value_number))
            .group_by(staged.year)
            .order_by(staged.year)
        ).all()
        keys = set(conn.scalars(select(staged.question_key).distinct()))
        eligible = conn.execute(select(staged_members).order_by(staged_members.c.year)).all()
        stage.drop()
        left = [inspect(conn).has_table(table.name) for table in (staged_answers, staged_members)]

    assert [tuple(row) for row in rows] == [(year, 3, 600.0) for year in YEARS]
    assert [tuple(row) for row in eligible] == [(year, 3) for year in YEARS]
    assert keys == {"employees"} and left == [False, False]
    run = build_snapshot(engine, trigger="full", as_of=AS_OF, force=True, threshold=THRESHOLD)
    assert db.get(Snapshot, run.snapshot_id).data_quality["timings"]["staged_answers"] >= 0


def test_a_build_that_fails_after_staging_leaves_no_staged_answers_for_the_next(
    settings, db, monkeypatch
):
    surveys(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 3)
    add_answers(db, [(p, 100 * (p + 1), True, "accepted", 2025) for p in range(3)])
    db.commit()
    # An engine of its own: its pool holds the one connection both builds run on.
    engine = get_engine(settings.database_url, DatabaseTimeouts(lock=29))
    insert_cells = build._insert_cells

    def fails_on_surveys(conn, snapshot_id, code, *args, **kwargs):
        if code.startswith("survey_") and code != "survey_response_rate":
            raise RuntimeError("the build stops with its answers staged")
        return insert_cells(conn, snapshot_id, code, *args, **kwargs)

    monkeypatch.setattr(build, "_insert_cells", fails_on_surveys)
    with pytest.raises(RuntimeError, match="answers staged"):
        build_snapshot(engine, trigger="fails", as_of=AS_OF, force=True, threshold=THRESHOLD)
    monkeypatch.setattr(build, "_insert_cells", insert_cells)

    try:
        run = build_snapshot(engine, trigger="again", as_of=AS_OF, force=True, threshold=THRESHOLD)
        pooled = engine.pool.checkedin()
    finally:
        engine.dispose()

    assert pooled == 1 and run.built and db.get(Snapshot, run.snapshot_id).status == "built"
    assert ("survey_employees", "2025") in {row[:2] for row in cells(db, run.snapshot_id)}


def test_a_request_without_a_topic_rebuilds_everything(settings, db):
    make_certificate(db, member=make_member(db))
    db.commit()
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="first", as_of=AS_OF, force=True)
    request_aggregation(db, reason="staff request", requested_by=None)
    db.commit()

    result = build_snapshot(engine, trigger="again", as_of=AS_OF)

    assert db.get(Snapshot, result.snapshot_id).data_quality["build"]["mode"] == "full"


def test_a_survey_indicator_whose_aggregation_changed_is_recomputed_not_copied(settings, db):
    make_survey(db)
    add_members(db, [("Civil Society", "DE", 2020)] * 3)
    add_answers(db, [(pick, 100 * (pick + 1), True, "accepted", 2025) for pick in range(3)])
    db.commit()
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="first", as_of=AS_OF, force=True, threshold=THRESHOLD)
    # A newer survey asks the same question but averages it (staff edited it in the draft).
    newer = make_survey(db, year=2026)
    db.execute(
        update(SurveyQuestion)
        .where(SurveyQuestion.definition_id == newer.id, SurveyQuestion.key == "employees")
        .values(aggregation="mean")
    )
    request_aggregation(db, reason="a submission", requested_by=None, topic="responses")
    db.commit()

    run = build_snapshot(engine, trigger="inc", as_of=AS_OF, threshold=THRESHOLD)

    snapshot = db.get(Snapshot, run.snapshot_id)
    assert "survey_employees" not in snapshot.data_quality["build"]["reused"]
    headline = db.scalar(
        select(IndicatorValue.value).where(
            IndicatorValue.snapshot_id == run.snapshot_id,
            IndicatorValue.indicator == "survey_employees",
            IndicatorValue.period == "all",
            IndicatorValue.breakdown == "total",
        )
    )
    # The mean of 100, 200 and 300 (no longer their sum, 600), with noise of at most 300 / 3 / 10.
    assert abs(headline - 200) <= 10


def test_a_withdrawn_latest_snapshot_is_no_base_for_copying(settings, db):
    make_certificate(db, member=make_member(db))
    db.commit()
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="first", as_of=AS_OF, force=True)
    make_certificate(db, member=make_member(db))
    request_aggregation(db, reason="import", requested_by=None, topic="certification")
    db.commit()
    imported = build_snapshot(engine, trigger="import", as_of=AS_OF)
    db.execute(
        update(Snapshot).where(Snapshot.id == imported.snapshot_id).values(status="withdrawn")
    )
    request_aggregation(db, reason="a submission", requested_by=None, topic="responses")
    db.commit()

    run = build_snapshot(engine, trigger="after", as_of=AS_OF)

    # Copying from the first snapshot would drop the certificate the withdrawn one counted.
    assert db.get(Snapshot, run.snapshot_id).data_quality["build"]["mode"] == "full"
    total = select(IndicatorValue.value).where(
        IndicatorValue.snapshot_id == run.snapshot_id,
        IndicatorValue.indicator == "ps_certificates",
        IndicatorValue.period == "all",
        IndicatorValue.breakdown == "total",
    )
    assert db.scalar(total) == 2
