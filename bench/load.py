"""A small asyncio HTTP/1.1 load generator for loopback: N connections, or a fixed rate.

Pure Python, so a fresh machine needs nothing extra; it shares the cores with the server it
measures, which the report says beside every figure.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# Builds the raw bytes of the i-th request of connection c: make(c, i).
RequestMaker = Callable[[int, int], bytes]


@dataclass
class LoadResult:
    """What a run saw: latencies of good answers, status counts, errors, elapsed seconds."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # answers other than the expected status, and failed connections
    locked: int = 0  # answers whose body says "database is locked"
    skipped: int = 0  # fixed rate: requests not started in time because the server fell behind

    @property
    def ok(self) -> int:
        """Return the number of requests answered with the expected status."""
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Return good answers per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Return a latency percentile in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[rank] * 1000


def request(
    method: str, path: str, *, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """Return the raw bytes of one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Read one response; return its status, whether the server closes, and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close", body


class Client:
    """One keep-alive connection that reconnects whenever the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request and return its status and body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(raw)
            status, close, body = await _read_response(self.reader)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        """Drop the connection."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(client: Client, raw: bytes, expect: int, result: LoadResult) -> float | None:
    started = time.perf_counter()
    try:
        status, body = await client.send(raw)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        result.errors += 1
        return None
    elapsed = time.perf_counter() - started
    result.statuses[status] += 1
    if b"database is locked" in body:
        result.locked += 1
    if status != expect:
        result.errors += 1
        return None
    result.latencies.append(elapsed)
    return elapsed


async def closed_loop(
    host: str, port: int, make: RequestMaker, *, connections: int, seconds: float, expect: int = 200
) -> LoadResult:
    """Keep `connections` requests in flight for `seconds` and return what was seen."""
    result = LoadResult()
    deadline = time.perf_counter() + seconds

    async def run(number: int) -> None:
        client = Client(host, port)
        i = 0
        while time.perf_counter() < deadline:
            await _one(client, make(number, i), expect, result)
            i += 1
        client.close()

    started = time.perf_counter()
    await asyncio.gather(*(run(n) for n in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def fixed_rate(
    host: str,
    port: int,
    make: RequestMaker,
    *,
    rate: float,
    seconds: float,
    expect: int = 200,
    max_in_flight: int = 64,
) -> LoadResult:
    """Start `rate` requests a second for `seconds` (open loop) and return what was seen."""
    result = LoadResult()
    idle: list[Client] = []
    slots = asyncio.Semaphore(max_in_flight)

    async def run(i: int) -> None:
        async with slots:
            if time.perf_counter() > started + seconds:
                result.skipped += 1  # bounded in time: a server that fell behind is not waited for
                return
            client = idle.pop() if idle else Client(host, port)
            await _one(client, make(i % max_in_flight, i), expect, result)
            idle.append(client)

    started = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(run(i)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    for client in idle:
        client.close()
    return result
