"""Entry point for the `celery` command: `celery -A aggregator.worker worker --beat`."""

from aggregator.celery_app import create_celery
from outcomes.config import Settings

app = create_celery(Settings.from_env())
