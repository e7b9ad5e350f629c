"""Read published snapshots for the page and the data API; cells are cached by snapshot id."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from outcomes.catalogue import CATALOGUE
from outcomes.db import session_scope
from outcomes.models import Snapshot
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

    def headline(self, code: str) -> dict[str, Any] | None:
        """Return an indicator's headline cell (all periods, no breakdown)."""
        for cell in self.cells:
            if (cell["indicator"], cell["period"], cell["breakdown"]) == (code, "all", "total"):
                return cell
        return None

    def indicators(self) -> dict[str, dict[str, Any]]:
        """Return every catalogue indicator with its headline value, rule and cells."""
        result = {}
        for indicator in CATALOGUE:
            head = self.headline(indicator.code) or {}
            result[indicator.code] = {
                "title": indicator.title,
                "question": indicator.question,
                "unit": indicator.unit,
                "rule": indicator.rule,
                "source": indicator.source,
                "value": head.get("value"),
                "suppressed": head.get("suppressed", False),
                "contributors": head.get("contributors"),
                "cells": [c for c in self.cells if c["indicator"] == indicator.code],
            }
        return result


def snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    """Return the public description of a snapshot."""
    return {
        "id": snapshot.id,
        "version": snapshot.version,
        "as_of": snapshot.as_of.isoformat(),
        "published_at": snapshot.finished_at.isoformat() if snapshot.finished_at else None,
        "trigger": snapshot.trigger,
        "catalogue_version": snapshot.catalogue_version,
        "checksum": snapshot.checksum,
        "demo": snapshot.is_demo,
    }


def list_snapshots(url: str) -> list[dict[str, Any]]:
    """Return the public description of every published snapshot, newest first."""
    with session_scope(url, write=False) as session:
        return [snapshot_meta(s) for s in published_snapshots(session)]


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
        return tuple({name: getattr(row, name) for name in CELL_FIELDS} for row in rows)
