"""Programme records one at a time: the newest of a kind, add one, edit one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for

from collector.context import db, settings
from collector.imports import ImportError_, save_rows
from collector.kinds import KINDS, recent_records, record_values
from collector.records import update_record
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp


@bp.route("/records/<string:kind>", methods=["GET", "POST"])
@login_required("staff")
def records(kind: str) -> str | Response | tuple[str, int]:
    """List the newest records of a kind and record a new one by form (checked as an import)."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    session = db()
    errors: dict = {}
    values: dict = {}
    if request.method == "POST":
        values = {c: request.form.get(c, "").strip() for c in found.columns}
        row = {k: v for k, v in values.items() if v}
        try:
            save_rows(session, settings(), kind=found, raw=[row], staff=web_user())
        except ImportError_ as error:
            session.rollback()
            errors = error.errors.get("rows", {}).get("2", {})
        else:
            flash(f"Recorded one {found.singular}.")
            return redirect(url_for("staff.records", kind=kind))
    columns, rows = recent_records(session, found)
    page = render_template(
        "staff/records.html", kind=found, columns=columns, rows=rows, errors=errors, values=values
    )
    return (page, 422) if errors else page


@bp.route("/records/<string:kind>/<int:record_id>", methods=["GET", "POST"])
@login_required("staff")
def record(kind: str, record_id: int) -> str | Response | tuple[str, int]:
    """Show a record's values in a form; save the edited row (checked as an import row is)."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    session = db()
    values = record_values(session, found, record_id)
    if values is None:
        abort(404, description=f"No {found.singular} {record_id}.")
    errors: dict = {}
    if request.method == "POST":
        values = {c: request.form.get(c, "").strip() for c in found.columns}
        try:
            update_record(
                session,
                settings(),
                kind=found,
                record_id=record_id,
                raw={k: v for k, v in values.items() if v},
                staff=web_user(),
            )
        except ImportError_ as error:
            session.rollback()
            errors = error.errors
        else:
            flash(f"Saved {found.singular} {record_id}.")
            return redirect(url_for("staff.records", kind=kind))
    page = render_template(
        "staff/record.html", kind=found, record_id=record_id, values=values, errors=errors
    )
    return (page, 422) if errors else page
