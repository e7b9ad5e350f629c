"""A real SMTP server on loopback (aiosmtpd) and a Celery worker that sends mail to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from outcomes.config import Settings
from outcomes.runner import free_port
from tests.conftest import Backend, service_env


class Inbox:
    """An SMTP handler that keeps what it is given and refuses addresses starting 'refused'."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    async def handle_RCPT(self, server, session, envelope, address, options):
        """Refuse some recipients for good (550), as a server does for an unknown mailbox."""
        if address.startswith("refused"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        """Keep each recipient with the message."""
        text = envelope.content.decode("utf-8", "replace")
        for address in envelope.rcpt_tos:
            self.received.append((address, text))
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on one loopback port that a test can stop and start again."""

    def __init__(self) -> None:
        self.port = free_port(0)
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        """Start listening on the port."""
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening: connections to the port are refused."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def addresses(self) -> list[str]:
        """Return the recipients received so far."""
        return [address for address, _ in self.inbox.received]


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mail_settings(backend: Backend, smtp: SmtpServer) -> Settings:
    # A queue of its own: the session's worker_app (no SMTP host) must not take these tasks.
    return backend.settings.with_changes(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout=5.0,
        queue_name=backend.settings.queue_name + "-mail",
        mail_from="outcomes@example.org",
    )


@pytest.fixture(scope="module")
def mail_worker(mail_settings: Settings) -> Iterator[None]:
    """Run a real Celery worker process whose settings point at the loopback SMTP server."""
    # A process, not a thread: stopping an in-process test worker sets Celery's process-wide
    # should_terminate, which would stop the session's worker_app as well.
    env = {
        **service_env(mail_settings),
        "SMTP_HOST": mail_settings.smtp_host,
        "SMTP_PORT": str(mail_settings.smtp_port),
        "SMTP_TIMEOUT": str(mail_settings.smtp_timeout),
        "MAIL_FROM": mail_settings.mail_from,
        "OUTBOX_SWEEP_SECONDS": str(mail_settings.outbox_sweep_seconds),
    }
    celery = str(Path(sys.executable).parent / "celery")
    process = subprocess.Popen(
        [celery, "-A", "aggregator.worker", "worker", "-P", "solo", "-l", "warning"],
        env=env,
        start_new_session=True,
    )
    # Tasks sent before the worker is up wait for it in the broker.
    yield None
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
