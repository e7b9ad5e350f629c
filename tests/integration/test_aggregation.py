"""Snapshots built in SQL on a hand-checked fixture, on SQLite and on PostgreSQL."""

from datetime import date

from sqlalchemy import func, insert, select

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from outcomes.models import Outbox, Snapshot, SurveyResponse
from outcomes.queue import request_aggregation
from tests.factories import make_certificate, make_member, make_survey

AS_OF = date(2026, 6, 30)


def cells(db, snapshot_id: int, code: str) -> dict[tuple[str, str, str], float | None]:
    from outcomes.queries import snapshot_values

    return {
        (v.period, v.breakdown, v.category): v.value
        for v in snapshot_values(db, snapshot_id=snapshot_id)
        if v.indicator == code
    }


def build(settings, **kwargs):
    return build_snapshot(get_engine(settings.database_url), trigger="test", as_of=AS_OF, **kwargs)


def test_ps_certificates_count_issued_valid_kinds_countries_and_a_cumulative_series(settings, db):
    smelter, roller = make_member(db), make_member(db, country="NO")
    make_certificate(db, member=smelter, issued_on=date(2019, 3, 1), country="DE")
    make_certificate(
        db, member=smelter, issued_on=date(2021, 3, 1), country="DE", kind="provisional"
    )
    make_certificate(
        db, member=roller, issued_on=date(2021, 9, 1), country="NO", expires_on=date(2024, 9, 1)
    )
    make_certificate(db, member=roller, issued_on=date(2027, 1, 1))  # after the snapshot date
    make_certificate(db, member=roller, standard="CoC", issued_on=date(2020, 1, 1))
    request_aggregation(db, reason="test", requested_by=None)
    db.commit()

    result = build(settings)

    ps = cells(db, result.snapshot_id, "ps_certificates")
    assert ps[("all", "total", "")] == 3
    assert ps[("all", "status", "valid")] == 2  # the NO certificate expired in 2024
    assert ps[("all", "kind", "full")] == 2
    assert ps[("all", "kind", "provisional")] == 1
    assert ps[("all", "country", "DE")] == 2
    assert ps[("all", "country", "NO")] == 1
    assert (ps[("2019", "total", "")], ps[("2021", "total", "")]) == (1, 3)
    assert "2020" not in {period for period, _, _ in ps}  # no PS issued in 2020
    assert cells(db, result.snapshot_id, "coc_certificates")[("all", "total", "")] == 1


def test_the_response_rate_counts_submitted_members_of_those_active_that_year(settings, db):
    definition_id = make_survey(db, year=2025).id
    members = [make_member(db, joined_on=date(2020, 1, 1)) for _ in range(4)]
    make_member(db, joined_on=date(2026, 1, 1))  # joined after the reporting year
    for member, status in zip(members, ("submitted", "accepted", "draft"), strict=False):
        db.add(
            SurveyResponse(
                member_id=member.id,
                year=2025,
                definition_id=definition_id,
                status=status,
                current_revision=1,
                accepted_revision=1 if status == "accepted" else None,
            )
        )
    request_aggregation(db, reason="test", requested_by=None)
    db.commit()

    rate = cells(db, build(settings).snapshot_id, "survey_response_rate")

    assert rate[("2025", "coverage", "responding")] == 2
    assert rate[("2025", "coverage", "members")] == 4
    assert rate[("all", "total", "")] == 50.0


def test_a_run_with_nothing_pending_publishes_nothing(settings, db):
    request_aggregation(db, reason="test", requested_by=None)
    db.commit()
    first = build(settings)

    second = build(settings)

    assert first.built and not second.built
    assert second.snapshot_id == first.snapshot_id
    assert db.scalar(select(Outbox.snapshot_id)) == first.snapshot_id


def test_a_backlog_larger_than_postgresqls_parameter_limit_is_drained_in_one_run(settings, db):
    backlog = 70_000  # PostgreSQL takes at most 65,535 bind parameters in one statement
    db.execute(
        insert(Outbox),
        [{"job_id": f"agg-backlog-{i}", "reason": "backlog"} for i in range(backlog)],
    )
    db.commit()

    run = build(settings)

    assert run.built and run.outbox_rows == backlog
    pending = select(func.count()).where(Outbox.snapshot_id.is_distinct_from(run.snapshot_id))
    assert db.scalar(pending) == 0


def test_rebuilding_the_same_inputs_gives_the_same_checksum(settings, db):
    make_certificate(db, member=make_member(db))
    db.commit()
    one = build(settings, force=True)
    two = build(settings, force=True)

    checksums = db.scalars(select(Snapshot.checksum).order_by(Snapshot.id)).all()
    versions = db.scalars(select(Snapshot.version).order_by(Snapshot.id)).all()
    assert one.snapshot_id != two.snapshot_id
    assert checksums[0] == checksums[1] and checksums[0]
    assert versions[1] > versions[0]


def test_the_snapshot_records_its_inputs_and_catalogue_version(settings, db):
    make_certificate(db, member=make_member(db))
    request_aggregation(db, reason="test", requested_by=None)
    db.commit()

    snapshot = db.get(Snapshot, build(settings).snapshot_id)

    assert snapshot.status == "built"
    assert snapshot.inputs["certificate"] == 1 and snapshot.inputs["member"] == 1
    assert snapshot.high_water_mark == db.scalar(select(Outbox.id))
    assert snapshot.catalogue_version and snapshot.as_of == AS_OF
