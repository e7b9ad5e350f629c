"""CPU per survey PUT measured the same way in process and inside a gunicorn worker.

Both send the bench's 30-question PUTs one after another from one client, to the same
database and broker, and divide the CPU time the serving process used by the PUTs:
`time.process_time()` around the test client's loop; the worker's utime + stime from
/proc around the HTTP loop. `--profile` adds cProfile's top functions of each (in the
worker through gunicorn's post_worker_init / worker_exit hooks, bench/profile_hooks.py).

    python -m bench.putcpu --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/mybench
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from bench.generate import OPEN_YEAR, generate, prepare_database, submission
from outcomes.config import Settings
from outcomes.runner import free_port, wait_until_healthy

HOST = "127.0.0.1"
OUTCOMES = str(Path(sys.executable).parent / "outcomes")
TICKS = os.sysconf("SC_CLK_TCK")


def _bodies(count: int = 97) -> list[bytes]:
    rng = random.Random(1)
    return [orjson.dumps({"status": "submitted", "answers": submission(rng)}) for _ in range(count)]


def in_process(settings: Settings, tokens: list[str], puts: int, profile: bool) -> float:
    """Return the ms of CPU per PUT through Flask's test client in this process."""
    from collector import create_app

    client = create_app(settings).test_client()
    bodies = _bodies()

    def send(i: int) -> None:
        answer = client.put(
            f"/api/v1/surveys/{OPEN_YEAR}",
            data=bodies[i % len(bodies)],
            headers={
                "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                "Content-Type": "application/json",
            },
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)

    for i in range(20):  # warm: the open survey's schemas, the pool, imports
        send(i)
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler:
        profiler.enable()
    for i in range(puts):
        send(i)
    if profiler:
        profiler.disable()
        _print_profile("in process", pstats.Stats(profiler))
    return (time.process_time() - started) * 1000 / puts


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def in_gunicorn(settings: Settings, tokens: list[str], puts: int, profile: bool) -> float:
    """Return the ms of CPU per PUT used by one gunicorn worker serving them over HTTP."""
    port = free_port(0)
    out = Path(tempfile.mkdtemp(prefix="putcpu-"))
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": settings.broker_url,
        "SECRET_KEY": settings.secret_key,
        "CELERY_QUEUE": settings.queue_name,
        "COLLECTOR_PORT": str(port),
        "OUTCOMES_DATA_DIR": str(out),
    }
    if profile:
        env["GUNICORN_CMD_ARGS"] = "--config python:bench.profile_hooks"
        env["PUTCPU_PROFILE"] = str(out / "worker.prof")
    log = (out / "collector.log").open("wb")
    master = subprocess.Popen(
        [OUTCOMES, "serve", "collector", "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"http://{HOST}:{port}/healthz", timeout=60, process=master)
        worker = int(Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()[0])
        bodies = _bodies()

        def send(i: int) -> None:
            client = http.client.HTTPConnection(HOST, port, timeout=30)
            client.request(
                "PUT",
                f"/api/v1/surveys/{OPEN_YEAR}",
                body=bodies[i % len(bodies)],
                headers={
                    "Authorization": f"Bearer {tokens[i % len(tokens)]}",
                    "Content-Type": "application/json",
                },
            )
            answer = client.getresponse()
            answer.read()
            client.close()
            assert answer.status == 200, answer.status

        for i in range(20):
            send(i)
        before = _cpu_ticks(worker)
        for i in range(puts):
            send(i)
        used = _cpu_ticks(worker) - before
    finally:
        master.terminate()
        master.wait(timeout=30)
    if profile:
        _print_profile("gunicorn worker", pstats.Stats(str(out / "worker.prof")))
    return used / TICKS * 1000 / puts


def _print_profile(title: str, stats: pstats.Stats) -> None:
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(20)
    print(f"--- {title}: top functions by own time ---")
    print("\n".join(buffer.getvalue().splitlines()[6:32]))


def main(argv: list[str] | None = None) -> int:
    """Measure and print CPU per PUT both ways."""
    parser = argparse.ArgumentParser(prog="python -m bench.putcpu", description=__doc__)
    parser.add_argument(
        "--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/outcomes_putcpu"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--puts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two ways this often")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    prepare_database(args.pg_url)
    data = generate(args.pg_url, members=500, answers=20_000, accounts=64)
    settings = Settings(
        database_url=args.pg_url,
        broker_url=args.redis_url,
        queue_name=f"outcomes-putcpu-{uuid.uuid4().hex[:8]}",
        secret_key="putcpu-" + uuid.uuid4().hex,
    )
    try:
        for round_ in range(args.rounds):
            profile = args.profile and round_ == 0
            inside = in_process(settings, data.tokens, args.puts, profile)
            served = in_gunicorn(settings, data.tokens, args.puts, profile)
            print(
                f"round {round_ + 1}: CPU per PUT in process {inside:.2f} ms, "
                f"in the gunicorn worker {served:.2f} ms ({served / inside:.2f}x); "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    finally:
        import redis

        redis.Redis.from_url(args.redis_url).delete(settings.queue_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
