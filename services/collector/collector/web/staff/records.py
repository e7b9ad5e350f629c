"""Programme records one at a time: the newest of a kind, add one, edit one."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import EXCLUDE, ValidationError

from collector.context import db, settings
from collector.imports import ImportError_, save_rows
from collector.kinds import KINDS, ListQuerySchema, list_records, record_values, sort_keys
from collector.records import update_record
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp


@bp.route("/records/<string:kind>", methods=["GET", "POST"])
@login_required("staff")
def records(kind: str) -> str | Response | tuple[str, int]:
    """List a kind's records (searched, sorted, paged) and record a new one by form."""
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
    status, problem = (422, None) if errors else (200, None)
    try:
        asked = ListQuerySchema(unknown=EXCLUDE).load(request.args)
        listed = list_records(session, found, **asked)
    except (ValidationError, ValueError) as wrong:
        asked, listed = {"q": "", "sort": "-id"}, list_records(session, found)
        status, problem = 400, _message(wrong)
    page = render_template(
        "staff/records.html",
        kind=found,
        listed=listed,
        asked=asked,
        sorts=sort_keys(found),
        problem=problem,
        errors=errors,
        values=values,
    )
    return page, status


def _message(wrong: Exception) -> str:
    if isinstance(wrong, ValidationError):
        fields = wrong.normalized_messages()
        return " ".join(f"{name}: {' '.join(map(str, m))}" for name, m in fields.items())
    return str(wrong)


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
