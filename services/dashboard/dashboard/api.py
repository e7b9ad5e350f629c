"""The read-only data API: published snapshots as JSON or CSV, and /healthz."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy import text

from dashboard.data import CELL_FIELDS, SnapshotView, list_snapshots, load_snapshot
from outcomes.db import get_engine

blueprint = Blueprint("data_api", __name__)


def _url() -> str:
    return current_app.config["OUTCOMES_DATABASE_URL"]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"errors": {"request": [message]}, "message": message}, status)


def _snapshot_response(view: SnapshotView | None, missing: str) -> Response:
    """Answer one snapshot in the format the query string asks for."""
    if view is None:
        return _error(404, missing)
    fmt = request.args.get("format", "json")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["snapshot_id", "as_of", *CELL_FIELDS])
        for cell in view.cells:
            writer.writerow([view.meta["id"], view.meta["as_of"], *(cell[f] for f in CELL_FIELDS)])
        filename = f"outcomes-snapshot-{view.meta['id']}.csv"
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )
    if fmt != "json":
        return _error(400, "format must be json or csv.")
    return _json({"snapshot": view.meta, "indicators": view.indicators()})


@blueprint.get("/api/v1/snapshots")
def snapshots() -> Response:
    """List every published snapshot, newest first."""
    return _json({"snapshots": list_snapshots(_url())})


@blueprint.get("/api/v1/snapshots/latest")
def latest() -> Response:
    """Return the newest published snapshot."""
    return _snapshot_response(load_snapshot(_url()), "No snapshot has been published yet.")


@blueprint.get("/api/v1/snapshots/<int:snapshot_id>")
def by_id(snapshot_id: int) -> Response:
    """Return one published snapshot."""
    return _snapshot_response(
        load_snapshot(_url(), snapshot_id), f"No published snapshot {snapshot_id}."
    )


@blueprint.get("/healthz")
def healthz() -> Response:
    """Answer 200 when the database answers."""
    try:
        with get_engine(_url()).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:  # any database failure means not ready
        return _json({"status": "database unavailable"}, 503)
    return _json({"status": "ok"})
