"""The collector's one write path: record a change (audit row, outbox row), commit, then send."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from outcomes.config import Settings
from outcomes.mail import enqueue_mail, take_queued
from outcomes.models import AuditLog, Outbox
from outcomes.queue import enqueue, request_aggregation

# A process sends at most one aggregation run per interval: one run drains every pending outbox
# row, so the changes of a burst need one run, not one each (the outbox keeps them safe).
SEND_INTERVAL = 0.2
# Built once at import: the survey PUT records a change on every save.
ADD_AUDIT = insert(AuditLog.__table__)


def record_change(
    session: Session,
    settings: Settings,
    *,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: object = None,
    details: dict[str, Any] | None = None,
    topic: str | None = None,
    reason: str | None = None,
    year: int | None = None,
) -> Outbox | None:
    """Commit the session's changes with their audit row and, given a topic, an outbox row.

    Mail queued in the transaction (outcomes.mail.queue_mail) is enqueued after the commit.

    topic names what the change feeds (outcomes.catalogue.TOPICS); with one, the aggregation
    run is sent after the commit, and year names a survey change's reporting year. A failed or
    skipped send loses nothing: the periodic outbox sweep sends every pending row. Returns the
    outbox row, if any.
    """
    outbox = None
    if topic is not None:
        outbox = request_aggregation(
            session, reason=(reason or action)[:100], requested_by=actor_id, topic=topic, year=year
        )
    if object_type == "outbox" and outbox is not None:
        object_id = outbox.id  # the change is the request itself
    session.execute(
        ADD_AUDIT,
        {
            "actor_id": actor_id,
            "action": action,
            "object_type": object_type,
            "object_id": None if object_id is None else str(object_id)[:40],
            "details": details or {},
        },
    )
    # The send may run later on a timer thread, after this session has moved on: it gets a
    # copy that belongs to no session, not the row the commit expires.
    sent = outbox and Outbox(job_id=outbox.job_id, reason=outbox.reason, requested_by=actor_id)
    mail_ids = take_queued(session)
    session.commit()
    if sent is not None:
        sender(settings).send(sent)
    if mail_ids:  # mail rows written with the change (queue_mail): the worker sends them
        enqueue_mail(settings, mail_ids)
    return outbox


class Sender:
    """Sends one process's aggregation runs: at once, or folded into one at the interval's end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.last_sent = float("-inf")
        self.due: Outbox | None = None  # the newest row waiting for the interval to end

    def send(self, row: Outbox) -> None:
        """Send a run for a committed outbox row, or leave it to the send already due."""
        with self.lock:
            wait = self.last_sent + SEND_INTERVAL - time.monotonic()
            if self.due is None and wait > 0:
                timer = threading.Timer(wait, self._send_due)
                timer.daemon = True  # if the process ends first, the outbox sweep sends it
                timer.start()
            if self.due is not None or wait > 0:
                self.due = row
                return
            self.last_sent = time.monotonic()
        enqueue(self.settings, row)

    def _send_due(self) -> None:
        with self.lock:
            row, self.due = self.due, None
            self.last_sent = time.monotonic()
        if row is not None:
            enqueue(self.settings, row)


_senders: dict[Settings, Sender] = {}
_senders_lock = threading.Lock()


def sender(settings: Settings) -> Sender:
    """Return the process's sender for one configuration."""
    with _senders_lock:
        return _senders.setdefault(settings, Sender(settings))
