"""Schema migrations through Alembic, callable from the console command and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from outcomes.db import get_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for a database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, engine: Engine | None = None) -> None:
    """Bring the database at url up to the newest schema."""
    config = alembic_config(url)
    with (engine or get_engine(url)).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
