"""The abuse tests enqueue many aggregation runs and start no worker: drop them after each test."""

import pytest

from outcomes.queue import producer


@pytest.fixture(autouse=True)
def no_runs_left_behind(backend):
    """Purge the session's queue, so the worker later tests start does not spend minutes on runs
    for data that is gone (and time out the runs those tests wait for)."""
    yield
    producer(backend.settings).control.purge()
