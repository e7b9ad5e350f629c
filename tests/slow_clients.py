"""Slow clients (slowloris): sockets that send a request's header lines one at a time, slowly."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request
from collections.abc import Iterator


@contextlib.contextmanager
def slow_clients(port: int, count: int, *, every: float = 1.0) -> Iterator[None]:
    """Keep `count` connections to 127.0.0.1:port sending one header line every `every` s."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():  # a dropped connection is opened again, as an attacker would
            address = ("127.0.0.1", port)
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                line = 0
                while not stop.wait(every):
                    line += 1
                    sock.sendall(f"X-Slow-{line}: {'a' * 20}\r\n".encode())
            stop.wait(0.1)

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        stop.wait(2 * every)  # every connection has started its request
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


def healthz_answers(url: str, probes: int, *, every: float = 1.0) -> int:
    """Probe a /healthz URL `probes` times; return how many answered 200 in time."""
    answered = 0
    for _ in range(probes):
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as answer:
            answered += answer.status == 200
        threading.Event().wait(every)
    return answered
