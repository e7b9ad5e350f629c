"""The gunicorn worker both web services run: threads, and a deadline on reading each request."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# A request (its head and body) must arrive within this many seconds of the first byte. A
# thread waits for it, so a client that trickles a header line every few seconds would
# otherwise hold a thread for as long as it likes (ten such clients, and /healthz stops).
REQUEST_READ_SECONDS = 20.0
# Threads per worker: the slow clients it takes to stall a worker before their deadline.
THREADS = 16


class _DeadlineSocket:
    """A client socket whose reads of one request share one deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = time.monotonic() + REQUEST_READ_SECONDS

    def recv(self, size: int) -> bytes:
        """Read like socket.recv, but answer end-of-stream once the deadline has passed."""
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            return self._sock.recv(size)
        except TimeoutError:
            # Behave as a closed connection: gunicorn drops the request quietly and the app
            # sees a short body (a 400), instead of a traceback per slow client.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RD)
            return b""
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, each request read against REQUEST_READ_SECONDS."""

    def handle(self, conn: Any) -> Any:
        """Start the request's read deadline, then let gunicorn handle it."""
        if not isinstance(conn.sock, _DeadlineSocket):
            conn.sock = _DeadlineSocket(conn.sock)
        conn.sock.deadline = time.monotonic() + REQUEST_READ_SECONDS
        return super().handle(conn)
