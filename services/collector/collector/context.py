"""Per-request access to settings and the database session."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from outcomes.config import Settings
from outcomes.db import session_factory


def settings() -> Settings:
    """Return the settings the app was built with."""
    return current_app.extensions["outcomes_settings"]


def db() -> Session:
    """Return this request's session, opened on first use and closed at teardown."""
    if "db" not in g:
        config = settings()
        g.db = session_factory(config.database_url, timeouts=config.database_timeouts)()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    """Close the request's session, rolling back whatever was not committed."""
    session = g.pop("db", None)
    if session is not None:
        session.close()
