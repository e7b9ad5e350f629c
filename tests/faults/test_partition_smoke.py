"""A short partition run: test hosts in network namespaces, a worker cut off holding the lock.

Namespaces need root: elsewhere unavailable() skips it, and fails it in CI.
"""

import pytest

from faults import partition
from faults.invariants import INVARIANTS
from tests.conftest import unavailable


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Cut the worker holding the publish lock off entirely (P1), once."""
    reason = partition.available()
    if reason:
        unavailable(reason)
    return partition.run_partitions(
        ["P1"],
        rounds=1,
        hold=5,
        work=tmp_path_factory.mktemp("partition"),
        report=lambda _line: None,
    )


@pytest.mark.timeout(240)
def test_partitions_lose_nothing_and_new_data_is_published_by_the_healthy_worker(outcomes):
    [outcome] = outcomes
    assert outcome.notes == ["cut while holding the lock"]
    assert outcome.acks > 0, "the load acknowledged nothing, so nothing was tested"
    broken = {c: outcome.results[c] for c in INVARIANTS if not outcome.held(c)}
    assert broken == {}, f"P1: {broken}"
    assert outcome.failed_runs == 0, "the cut-off worker's run was recorded as failed"
