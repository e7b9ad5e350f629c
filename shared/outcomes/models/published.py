"""What the aggregator writes: snapshots, their indicator values, the outbox it drains."""

from __future__ import annotations

from datetime import date, datetime
from uuid import uuid4

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.models.base import Base, created_at

# A build is "running", then "built" (staff only) or "failed"; staff make a built one "released"
# (public), and may later make a release "withdrawn" (public, with the reason).
SNAPSHOT_STATUSES = ("running", "built", "failed", "released", "withdrawn")
# Statuses the public may read: a withdrawn release's address shows why it went.
PUBLIC_STATUSES = ("released", "withdrawn")


class Outbox(Base):
    """A request for re-aggregation, written in the same transaction as the data that needs it."""

    __tablename__ = "outbox"
    # Job ids and public snapshot ids derive from these ids: SQLite must never reuse one.
    __table_args__ = (
        Index("ix_outbox_pending", "processed_at", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # The Celery task id: random, so a recreated database never meets an old task's result.
    job_id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: f"agg-{uuid4().hex}"
    )
    topic: Mapped[str] = mapped_column(String(40), default="aggregate")
    # The reporting year a "survey" change touched: a run recomputes that year's survey cells only.
    year: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = created_at()
    processed_at: Mapped[datetime | None]
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshot.id"))


class Snapshot(Base):
    """One aggregation run (a build); its cells never change once built."""

    __tablename__ = "snapshot"
    __table_args__ = (
        Index("ix_snapshot_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int | None] = mapped_column(unique=True)
    status: Mapped[str] = mapped_column(String(10), default="running")
    trigger: Mapped[str] = mapped_column(String(100))
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    as_of: Mapped[date]
    started_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None]
    inputs: Mapped[dict] = mapped_column(default=dict)
    high_water_mark: Mapped[int] = mapped_column(default=0)
    catalogue_version: Mapped[str] = mapped_column(String(20))
    checksum: Mapped[str | None] = mapped_column(String(64))
    is_demo: Mapped[bool] = mapped_column(default=False)
    data_quality: Mapped[dict] = mapped_column(default=dict)
    # Per indicator code: title, unit, counting rule, source... as published with these values.
    indicators: Mapped[dict] = mapped_column(default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(String(2000))
    # Release: set when staff publish the build; release_number is unique, so of two staff
    # releasing at once only one can take the next number.
    title: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(String(5000))
    release_number: Mapped[int | None] = mapped_column(unique=True)
    released_at: Mapped[datetime | None]
    released_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Withdrawal: the reason is public, and so is the release that replaces it.
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    withdrawn_reason: Mapped[str | None] = mapped_column(String(2000))
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("snapshot.id"))


class IndicatorValue(Base):
    """One published cell: indicator x period x breakdown, with its contributors."""

    __tablename__ = "indicator_value"
    __table_args__ = (Index("ix_indicator_value_snapshot_code", "snapshot_id", "indicator"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id"))
    indicator: Mapped[str] = mapped_column(String(60))
    period: Mapped[str] = mapped_column(String(10))  # "all" for the headline, else a year
    breakdown: Mapped[str] = mapped_column(String(30))  # "total", "country", "standard", ...
    category: Mapped[str] = mapped_column(String(60))  # the breakdown's value; "" for totals
    value: Mapped[float | None] = mapped_column(Float)
    # Withheld (None) for member-reported cells: a count of members can itself disclose.
    contributors: Mapped[int | None]
    suppressed: Mapped[bool] = mapped_column(default=False)


class RecordKey(Base):
    """A member's permanent random record key, from which the cell key method derives noise."""

    __tablename__ = "record_key"
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), primary_key=True)
    key: Mapped[int]  # 1..KEY_RANGE-1, never 0, so adding or removing a member moves a cell key


class Perturbation(Base):
    """The installation's perturbation table (ptable): one secret random factor per cell key."""

    __tablename__ = "perturbation"
    cell_key: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    factor: Mapped[float] = mapped_column(Float)  # in (-1, 1)


class PublishGuard(Base):
    """A single row whose version is the fencing token of the one publisher allowed at a time."""

    __tablename__ = "publish_guard"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


class SiteFlag(Base):
    """A named fact about this installation, such as that it holds demo data."""

    __tablename__ = "site_flag"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
