"""Collector test fixtures."""

from itertools import count

import pytest

_addresses = count(1)


@pytest.fixture
def collector(collector):
    """Return the collector's test client, calling from an address of its own.

    Rate limits count per address in the run's Redis; a fresh address keeps one test's
    applications and sign-ins from spending another's allowance.
    """
    number = next(_addresses)
    collector.environ_base["REMOTE_ADDR"] = (
        f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
    )
    return collector
