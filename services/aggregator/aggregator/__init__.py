"""The aggregator: Celery workers that turn collected rows into published snapshots."""
