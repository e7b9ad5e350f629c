"""CSV imports of programme records: templates and uploads."""

from __future__ import annotations

from flask import Response, abort, render_template, request

from collector.context import db, settings
from collector.imports import ImportError_, import_rows, template_csv
from collector.kinds import KINDS
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp


@bp.get("/imports")
@login_required("staff")
def imports() -> str:
    """Show an upload form and a template for each kind of record."""
    return render_template("staff/imports.html", kinds=KINDS, result=None)


@bp.get("/imports/<string:kind>/template.csv")
@login_required("staff")
def import_template(kind: str) -> Response:
    """Download the CSV template of a kind: its header and one example row."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    return Response(
        template_csv(found),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.csv"'},
    )


@bp.post("/imports/<string:kind>")
@login_required("staff")
def import_upload(kind: str) -> str | tuple[str, int]:
    """Import an uploaded CSV whole, or show every error and import nothing."""
    found = KINDS.get(kind) or abort(404, description=f"Unknown kind {kind}.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        result = {"kind": kind, "message": "Choose a CSV file to upload.", "errors": {}}
        return render_template("staff/imports.html", kinds=KINDS, result=result), 422
    session = db()
    try:
        count = import_rows(session, settings(), kind=found, data=upload.read(), staff=web_user())
    except ImportError_ as error:
        session.rollback()
        result = {"kind": kind, "message": error.message, "errors": error.errors}
        return render_template("staff/imports.html", kinds=KINDS, result=result), 422
    result = {"kind": kind, "message": f"Imported {count} {kind.replace('_', ' ')}.", "errors": {}}
    return render_template("staff/imports.html", kinds=KINDS, result=result)
