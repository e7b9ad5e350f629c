"""Read releases for the page and the data API (a build only by preview); cells cached by id."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.catalogue import CATALOGUE, by_code
from outcomes.db import session_scope
from outcomes.diff import Change, snapshot_changes
from outcomes.models import CaseStudy, Snapshot
from outcomes.queries import snapshot_values
from outcomes.releases import ReleaseView, public_release, public_releases

CELL_FIELDS = (
    "indicator",
    "period",
    "breakdown",
    "category",
    "value",
    "contributors",
    "suppressed",
)


@dataclass(frozen=True, eq=False)
class SnapshotView:
    """A released snapshot as the public sees it (or a build, as staff preview it).

    One object per snapshot and process (see _snapshot_view), so what is derived from it is
    computed once; compared by identity, so it can key other caches.
    """

    meta: dict[str, Any]
    cells: tuple[dict[str, Any], ...]

    @cached_property
    def by_indicator(self) -> dict[str, list[dict[str, Any]]]:
        """Return the cells grouped by indicator code."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for cell in self.cells:
            grouped.setdefault(cell["indicator"], []).append(cell)
        return grouped

    def codes(self) -> list[str]:
        """Return the indicator codes to show: the catalogue's order, then the snapshot's others."""
        known = [i.code for i in CATALOGUE]
        return known + sorted(set(self.by_indicator) - set(known))

    def describe(self, code: str) -> dict[str, Any]:
        """Return an indicator's title, question, unit, source and rule, whatever its origin."""
        indicator = by_code().get(code)
        if indicator is not None:
            return {
                "title": indicator.title,
                "question": indicator.question,
                "unit": indicator.unit,
                "rule": indicator.rule,
                "source": indicator.source,
            }
        stored = self.meta.get("indicators", {}).get(code, {})
        generic = {
            "title": code.removeprefix("survey_").replace("_", " ").capitalize(),
            "question": 3 if code.startswith("survey_") else 0,
            "unit": "",
            "rule": "Counted as the indicator's definition says; no rule was published with it.",
            "source": "annual member survey" if code.startswith("survey_") else "",
        }
        return {key: stored.get(key) or default for key, default in generic.items()}

    def headline(self, code: str) -> dict[str, Any] | None:
        """Return an indicator's headline cell (all periods, no breakdown)."""
        for cell in self.by_indicator.get(code, []):
            if (cell["period"], cell["breakdown"]) == ("all", "total"):
                return cell
        return None

    def indicators(self) -> dict[str, dict[str, Any]]:
        """Return every indicator with its metadata, headline value and cells (do not change)."""
        return self._indicators

    @cached_property
    def _indicators(self) -> dict[str, dict[str, Any]]:
        result = {}
        for code in self.codes():
            head = self.headline(code) or {}
            result[code] = {
                **self.describe(code),
                "value": head.get("value"),
                "suppressed": head.get("suppressed", False),
                "contributors": head.get("contributors"),
                "cells": self.by_indicator.get(code, []),
            }
        return result


# The columns of a snapshot that describe it in the list of snapshots.
LISTED = (
    Snapshot.id,
    Snapshot.version,
    Snapshot.as_of,
    Snapshot.finished_at,
    Snapshot.status,
    Snapshot.title,
    Snapshot.released_at,
    Snapshot.catalogue_version,
    Snapshot.checksum,
    Snapshot.is_demo,
)


def snapshot_meta(snapshot: Any) -> dict[str, Any]:
    """Return the public description of a snapshot: a Snapshot, or a row of its LISTED columns."""
    meta = {
        "id": snapshot.id,
        "version": snapshot.version,
        "as_of": snapshot.as_of.isoformat(),
        # What the public may know of a release: its title and date, never what triggered it.
        "title": snapshot.title or f"Build {snapshot.id} (not released)",
        "published_at": snapshot.released_at.isoformat() if snapshot.released_at else None,
        "released": snapshot.status == "released",
        "catalogue_version": snapshot.catalogue_version,
        "checksum": snapshot.checksum,
        "demo": snapshot.is_demo,
    }
    if isinstance(snapshot, Snapshot):
        stored = snapshot.indicators
        # Metadata of indicators that are not in the catalogue (survey-derived ones), if kept.
        meta["indicators"] = stored if isinstance(stored, dict) else {}
    return meta


def list_snapshots(url: str) -> list[dict[str, Any]]:
    """Return the public description of every current release, newest first."""
    with session_scope(url, write=False) as session:
        return _published(session)


def snapshots_and_case_studies(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return every current release (newest first) and the case studies, in one transaction."""
    with session_scope(url, write=False) as session:
        return _published(session), _case_studies(session)


def load_snapshot(
    url: str, snapshot_id: int | None = None, *, build: bool = False
) -> SnapshotView | None:
    """Return a release (the latest if no id is given), or None; a build only if `build`."""
    statuses = ("built", "released") if build and snapshot_id is not None else ("released",)
    query = select(*LISTED).where(Snapshot.status.in_(statuses))
    if snapshot_id is not None:
        query = query.where(Snapshot.id == snapshot_id)
    # Asked every time: a release may have been withdrawn or a newer one released since.
    with session_scope(url, write=False) as session:
        found = session.execute(query.order_by(Snapshot.id.desc()).limit(1)).all()
    return chosen_snapshot(url, [snapshot_meta(row) for row in found], snapshot_id)


def chosen_snapshot(
    url: str, published: list[dict[str, Any]], snapshot_id: int | None
) -> SnapshotView | None:
    """Return one of the listed snapshots (the newest if no id is given), or None."""
    chosen = next((s for s in published if snapshot_id in (None, s["id"])), None)
    return None if chosen is None else _snapshot_view(url, chosen["id"], chosen["checksum"])


def _published(session: Session) -> list[dict[str, Any]]:
    # Each snapshot's indicator metadata (a document of its own) stays in the database.
    rows = session.execute(
        select(*LISTED).where(Snapshot.status == "released").order_by(Snapshot.id.desc())
    )
    return [snapshot_meta(row) for row in rows]


def _case_studies(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(CaseStudy.title, CaseStudy.country, CaseStudy.summary, CaseStudy.link)
        .order_by(CaseStudy.id.desc())
        .limit(50)
    )
    return [dict(row._mapping) for row in rows]


@lru_cache(maxsize=16)
def _snapshot_view(url: str, snapshot_id: int, _checksum: str) -> SnapshotView:
    """Return a snapshot's view; safe to cache because a build's cells never change."""
    with session_scope(url, write=False) as session:
        meta = snapshot_meta(session.get_one(Snapshot, snapshot_id))
        rows = snapshot_values(session, snapshot_id=snapshot_id)
        cells = ({name: getattr(row, name) for name in CELL_FIELDS} for row in rows)
        # A withheld value never leaves the database, whatever a row holds.
        public = tuple({**c, "value": None} if c["suppressed"] else c for c in cells)
    return SnapshotView(meta=meta, cells=public)


def previous_id(snapshots: list[dict[str, Any]], snapshot_id: int) -> int | None:
    """Return the id of the release just before one, from the list of them."""
    return next((s["id"] for s in snapshots if s["id"] < snapshot_id), None)


def changes_since(url: str, previous: int | None, snapshot_id: int) -> tuple[int | None, list]:
    """Return the previous snapshot's id and what changed since it."""
    if previous is None:
        return None, []
    return previous, list(_changes(url, previous, snapshot_id))


@lru_cache(maxsize=32)
def _changes(url: str, old_id: int, new_id: int) -> tuple[Change, ...]:
    """Compute the changes between two snapshots once per process: both are immutable."""
    with session_scope(url, write=False) as session:
        return tuple(snapshot_changes(session, old_id=old_id, new_id=new_id))


def releases(url: str) -> list[ReleaseView]:
    """Return every release, current and withdrawn, newest first."""
    with session_scope(url, write=False) as session:
        return public_releases(session)


def release(url: str, release_id: int) -> ReleaseView | None:
    """Return one release, current or withdrawn, or None."""
    with session_scope(url, write=False) as session:
        return public_release(session, release_id=release_id)


def release_json(r: ReleaseView) -> dict[str, Any]:
    """Return a release as GET /api/v1/releases describes it."""
    return {
        "id": r.id,
        "number": r.number,
        "title": r.title,
        "date": r.released_at.date().isoformat() if r.released_at else None,
        "released_at": r.released_at.isoformat() if r.released_at else None,
        "as_of": r.as_of,
        "notes": r.notes,
        "status": r.status,
        "withdrawn_at": r.withdrawn_at.isoformat() if r.withdrawn_at else None,
        "withdrawal_reason": r.withdrawn_reason,
        "replaced_by": None
        if r.replaced_by is None
        else {"id": r.replaced_by, "title": r.replaced_by_title},
    }
