"""The one place the aggregator's Celery app is built."""

from __future__ import annotations

from celery import Celery
from celery.schedules import crontab

from aggregator import tasks
from outcomes.config import Settings
from outcomes.mail import REMIND_TASK, SWEEP_MAIL_TASK
from outcomes.queue import AGGREGATE_TASK, SWEEP_TASK, celery_config


class OutcomesCelery(Celery):
    """A Celery app that carries the settings its tasks need."""

    settings: Settings


def create_celery(settings: Settings) -> OutcomesCelery:
    """Build the aggregator's Celery app with its tasks and beat schedule."""
    app = OutcomesCelery("aggregator")
    app.settings = settings
    app.conf.update(celery_config(settings))
    # A worker whose Redis is cut off keeps trying to record a run's outcome until it is back:
    # a failure to record it left the run unacknowledged, and the worker (prefetch 1) never took
    # another (found by the partition faults). Only the worker waits so; the collector never does.
    app.conf.result_backend_always_retry = True
    app.conf.beat_schedule = {
        "sweep-outbox": {"task": SWEEP_TASK, "schedule": float(settings.outbox_sweep_seconds)},
        "sweep-mail": {"task": SWEEP_MAIL_TASK, "schedule": float(settings.outbox_sweep_seconds)},
        # Hourly: a reminder is claimed once per member and day, so a repeat sends nothing.
        "campaign-reminders": {"task": REMIND_TASK, "schedule": crontab(minute=5)},
        "nightly-rebuild": {
            "task": AGGREGATE_TASK,
            "schedule": crontab(hour=2, minute=30),
            "kwargs": {"trigger": "nightly rebuild", "force": True},
        },
    }
    tasks.register(app)
    return app
