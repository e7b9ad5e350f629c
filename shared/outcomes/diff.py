"""What changed between two snapshots (releases, or a build and a release), cell by cell, in SQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.orm import Session

from outcomes.models import IndicatorValue, Snapshot

CELL_KEY = ("indicator", "period", "breakdown", "category")


@dataclass(frozen=True)
class Change:
    """One cell whose public value differs between an older and a newer snapshot."""

    indicator: str
    period: str
    breakdown: str
    category: str
    old: float | None
    new: float | None
    # added / removed / changed / suppressed (withheld in the newer one) / released (no longer)
    status: str

    @property
    def delta(self) -> float | None:
        """Return new minus old where both are public."""
        return None if self.old is None or self.new is None else self.new - self.old


def previous_snapshot_id(session: Session, *, snapshot_id: int) -> int | None:
    """Return the id of the release just before a snapshot, if any."""
    query = select(func.max(Snapshot.id)).where(
        Snapshot.status == "released", Snapshot.id < snapshot_id
    )
    return session.scalar(query)


def snapshot_changes(
    session: Session, *, old_id: int, new_id: int, statuses: tuple[str, ...] = ("released",)
) -> list[Change]:
    """Return the cells that differ between two snapshots of `statuses`; withheld values hidden."""
    v = IndicatorValue.__table__.c
    published = select(Snapshot.id).where(
        Snapshot.id.in_((old_id, new_id)), Snapshot.status.in_(statuses)
    )

    def side(snapshot_id: int, column):  # one snapshot's public value (or flag) per cell
        public = and_(v.snapshot_id == snapshot_id, v.suppressed.is_(False))
        return func.max(case((public, cast(column, Float))))

    def flag(snapshot_id: int, condition):
        return func.max(case((and_(v.snapshot_id == snapshot_id, condition), 1), else_=0))

    if session.scalar(select(func.count()).select_from(published.subquery())) != 2:
        return []  # never compare against a build (unless asked), a withdrawn or missing one
    old, new = side(old_id, v.value), side(new_id, v.value)
    in_old, in_new = flag(old_id, v.id.isnot(None)), flag(new_id, v.id.isnot(None))
    hid_old, hid_new = flag(old_id, v.suppressed.is_(True)), flag(new_id, v.suppressed.is_(True))
    query = (
        select(
            *(v[name] for name in CELL_KEY),
            old.label("old"),
            new.label("new"),
            in_old.label("in_old"),
            in_new.label("in_new"),
            hid_old.label("hid_old"),
            hid_new.label("hid_new"),
        )
        .where(v.snapshot_id.in_(published))
        .group_by(*(v[name] for name in CELL_KEY))
        .having(old.is_distinct_from(new) | (in_old != in_new) | (hid_old != hid_new))
        .order_by(*(v[name] for name in CELL_KEY))
    )
    return [
        Change(
            indicator=row.indicator,
            period=row.period,
            breakdown=row.breakdown,
            category=row.category,
            old=row.old,
            new=row.new,
            status=_status(row),
        )
        for row in session.execute(query)
    ]


def _status(row) -> str:
    """Name how a cell changed."""
    if not row.in_old:
        return "added"
    if not row.in_new:
        return "removed"
    if row.hid_new and not row.hid_old:
        return "suppressed"
    if row.hid_old and not row.hid_new:
        return "released"
    return "changed"
