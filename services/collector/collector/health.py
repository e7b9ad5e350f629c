"""Readiness probe."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from collector.context import db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        db().execute(text("SELECT 1"))
    except Exception:  # any database failure means not ready
        return {"status": "database unavailable"}, 503
    return {"status": "ok"}, 200
