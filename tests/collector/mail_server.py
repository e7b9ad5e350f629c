"""A real SMTP server on loopback (aiosmtpd) and a Celery worker that sends mail to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from outcomes.config import Settings
from outcomes.runner import free_port
from tests.conftest import Backend


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
def mail_worker(mail_settings: Settings) -> Iterator:
    """Run a real Celery worker (solo pool) whose settings point at the loopback SMTP server."""
    from celery.contrib.testing.worker import start_worker

    from aggregator.celery_app import create_celery

    app = create_celery(mail_settings)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app
