"""Progress of a run, sent to the result backend without ever holding up the run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class ProgressReporter:
    """Send a run's latest progress from its own thread: the publish lock never waits on Redis."""

    def __init__(self, send: Callable[[int, str], None], *, deadline: float) -> None:
        self._send = send
        self._deadline = deadline
        self._latest: tuple[int, str] | None = None
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    def __call__(self, percent: int, step: str) -> None:
        """Note the run's progress; only the latest is sent, so reports never queue up."""
        self._latest = (percent, step)
        self._wake.set()

    def close(self) -> None:
        """Send what is left and stop, waiting at most one Redis deadline."""
        self._closed = True
        self._wake.set()
        # Joined so a late report cannot overwrite the run's final state in the result backend.
        self._thread.join(timeout=self._deadline)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            latest, self._latest = self._latest, None
            if latest is not None:
                try:
                    self._send(*latest)
                except Exception:
                    # Progress lives in Redis and is only for people watching. Without this, a
                    # Redis outage mid-run aborted the build and recorded a failed snapshot (F4).
                    log.warning("could not report progress %s", latest, exc_info=True)
            if self._closed and self._latest is None:
                return
