"""The read-only data API: releases as JSON or CSV, the release history, and /healthz."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy import text

from dashboard.data import (
    SnapshotView,
    list_snapshots,
    load_snapshot,
    release,
    release_json,
    releases,
)
from dashboard.export import LICENCE_URL, to_csv, to_json
from dashboard.filters import is_snapshot_id
from outcomes.db import get_engine
from outcomes.releases import previewed_build

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
    if fmt not in ("json", "csv"):
        return _error(400, "format must be json or csv.")
    filename = f"outcomes-snapshot-{view.meta['id']}.{fmt}"
    headers = {
        "Content-Disposition": f"inline; filename={filename}",
        "Link": f'<{LICENCE_URL}>; rel="license"',
    }
    if fmt == "csv":
        return Response(
            to_csv(view.meta, list(view.cells), view.indicators()),
            mimetype="text/csv",
            headers=headers,
        )
    body = to_json(view.meta, view.indicators())
    return Response(body, mimetype="application/json", headers=headers)


@blueprint.get("/api/v1/releases")
def release_history() -> Response:
    """List every release, current and withdrawn (with the reason and replacement), newest first."""
    return _json({"releases": [release_json(r) for r in releases(_url())]})


@blueprint.get("/api/v1/snapshots")
def snapshots() -> Response:
    """List every current release, newest first."""
    return _json({"snapshots": list_snapshots(_url())})


@blueprint.get("/api/v1/snapshots/latest")
def latest() -> Response:
    """Return the newest release."""
    return _snapshot_response(load_snapshot(_url()), "Nothing has been released yet.")


@blueprint.get("/api/v1/snapshots/<snapshot_id>")
def by_id(snapshot_id: str) -> Response:
    """Return one release, or a build to staff holding its preview token."""
    if not is_snapshot_id(snapshot_id):
        return _error(400, f"A snapshot id is a number, such as 12, not {snapshot_id[:40]!r}.")
    wanted = int(snapshot_id)
    if "preview" in request.args:
        token = request.args.get("preview", "")
        if previewed_build(current_app.config["OUTCOMES_SECRET_KEY"], token) != wanted:
            return _error(
                403, "This preview link has expired, is not genuine or is for another build."
            )
        return _snapshot_response(load_snapshot(_url(), wanted, build=True), f"No build {wanted}.")
    view = load_snapshot(_url(), wanted)
    gone = None if view is not None else release(_url(), wanted)
    if gone is not None and gone.status == "withdrawn":
        body = {**release_json(gone), "errors": {"request": [f"{gone.title} was withdrawn."]}}
        return _json(body, 410)
    return _snapshot_response(view, f"There is no release {wanted}.")


@blueprint.route("/api/<path:_rest>")
def unknown(_rest: str) -> Response:
    """Answer JSON, not the page, for an address under /api/ that names nothing."""
    return _error(404, "No such address in the data API: see /api/v1/snapshots.")


@blueprint.before_app_request
def unknown_embed() -> Response | None:
    """Answer 404 with a message for /embed/<code> or /indicator/<code> of no indicator."""
    parts = request.path.strip("/").split("/")
    if (parts[0], len(parts)) not in (("embed", 2), ("embed", 3), ("indicator", 2)):
        return None
    snapshot = request.args.get("snapshot", "")
    if snapshot and not is_snapshot_id(snapshot):
        return None  # the page says what is wrong with the address
    data = load_snapshot(_url(), int(snapshot) if snapshot else None)
    if data is None or parts[1] in data.indicators():
        return None
    return Response(
        f"There is no indicator {parts[1][:60]!r} in the published figures: "
        "see /api/v1/snapshots/latest for the indicator codes.",
        status=404,
        mimetype="text/plain",
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
