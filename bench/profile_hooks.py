"""gunicorn hooks that profile a worker with cProfile (bench.putcpu --profile)."""

from __future__ import annotations

import cProfile
import os
from typing import Any

_profiler = cProfile.Profile()


def post_worker_init(_worker: Any) -> None:
    """Start profiling once the worker has loaded the app."""
    _profiler.enable()


def worker_exit(_server: Any, _worker: Any) -> None:
    """Write the worker's profile where bench.putcpu reads it."""
    _profiler.disable()
    _profiler.dump_stats(os.environ["PUTCPU_PROFILE"])
