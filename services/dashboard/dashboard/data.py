"""Read published snapshots for the page and the data API; cells are cached by snapshot id."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from outcomes.catalogue import CATALOGUE, by_code
from outcomes.db import session_scope
from outcomes.diff import Change, previous_snapshot_id, snapshot_changes
from outcomes.models import CaseStudy, Snapshot
from outcomes.queries import (
    latest_snapshot,
    published_snapshot,
    published_snapshots,
    snapshot_values,
)

CELL_FIELDS = (
    "indicator",
    "period",
    "breakdown",
    "category",
    "value",
    "contributors",
    "suppressed",
)


@dataclass(frozen=True)
class SnapshotView:
    """A published snapshot as the public sees it."""

    meta: dict[str, Any]
    cells: tuple[dict[str, Any], ...]

    def codes(self) -> list[str]:
        """Return the indicator codes to show: the catalogue's order, then the snapshot's others."""
        present = {cell["indicator"] for cell in self.cells}
        known = [i.code for i in CATALOGUE]
        return known + sorted(present - set(known))

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
        for cell in self.cells:
            if (cell["indicator"], cell["period"], cell["breakdown"]) == (code, "all", "total"):
                return cell
        return None

    def indicators(self) -> dict[str, dict[str, Any]]:
        """Return every indicator with its metadata, headline value and cells."""
        result = {}
        for code in self.codes():
            head = self.headline(code) or {}
            result[code] = {
                **self.describe(code),
                "value": head.get("value"),
                "suppressed": head.get("suppressed", False),
                "contributors": head.get("contributors"),
                "cells": [c for c in self.cells if c["indicator"] == code],
            }
        return result


def snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    """Return the public description of a snapshot."""
    stored = snapshot.indicators
    return {
        "id": snapshot.id,
        "version": snapshot.version,
        "as_of": snapshot.as_of.isoformat(),
        "published_at": snapshot.finished_at.isoformat() if snapshot.finished_at else None,
        "trigger": snapshot.trigger,
        "catalogue_version": snapshot.catalogue_version,
        "checksum": snapshot.checksum,
        "demo": snapshot.is_demo,
        # Metadata of indicators that are not in the catalogue (survey-derived ones), if kept.
        "indicators": stored if isinstance(stored, dict) else {},
    }


def list_snapshots(url: str) -> list[dict[str, Any]]:
    """Return the public description of every published snapshot, newest first."""
    with session_scope(url, write=False) as session:
        # The list stays small: each snapshot's indicator metadata is in its own document.
        metas = [snapshot_meta(s) for s in published_snapshots(session)]
    return [{k: v for k, v in meta.items() if k != "indicators"} for meta in metas]


def load_snapshot(url: str, snapshot_id: int | None = None) -> SnapshotView | None:
    """Return a published snapshot (the latest if no id is given), or None."""
    with session_scope(url, write=False) as session:
        if snapshot_id is None:
            snapshot = latest_snapshot(session)
        else:
            snapshot = published_snapshot(session, snapshot_id=snapshot_id)
        if snapshot is None:
            return None
        meta = snapshot_meta(snapshot)
    return SnapshotView(meta=meta, cells=_cells(url, meta["id"], meta["checksum"]))


@lru_cache(maxsize=32)
def _cells(url: str, snapshot_id: int, _checksum: str) -> tuple[dict[str, Any], ...]:
    """Return a snapshot's cells; safe to cache because published cells never change."""
    with session_scope(url, write=False) as session:
        rows = snapshot_values(session, snapshot_id=snapshot_id)
        cells = ({name: getattr(row, name) for name in CELL_FIELDS} for row in rows)
        # A withheld value never leaves the database, whatever a row holds.
        return tuple({**c, "value": None} if c["suppressed"] else c for c in cells)


def changes_since_previous(url: str, snapshot_id: int) -> tuple[int | None, list[Change]]:
    # Looked up every time: the previous snapshot may have been withdrawn since.
    with session_scope(url, write=False) as session:
        previous = previous_snapshot_id(session, snapshot_id=snapshot_id)
    if previous is None:
        return None, []
    return previous, list(_changes(url, previous, snapshot_id))


@lru_cache(maxsize=32)
def _changes(url: str, old_id: int, new_id: int) -> tuple[Change, ...]:
    """Compute the changes between two snapshots once per process: both are immutable."""
    with session_scope(url, write=False) as session:
        return tuple(snapshot_changes(session, old_id=old_id, new_id=new_id))


def case_studies(url: str) -> list[dict[str, Any]]:
    """Return the case studies, newest first."""
    with session_scope(url, write=False) as session:
        rows = session.execute(
            select(CaseStudy.title, CaseStudy.country, CaseStudy.summary, CaseStudy.link)
            .order_by(CaseStudy.id.desc())
            .limit(50)
        )
        return [dict(row._mapping) for row in rows]
