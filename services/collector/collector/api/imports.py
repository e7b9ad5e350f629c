"""Staff import programme records from CSV files: all rows or none."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.imports import ImportError_, import_rows
from collector.kinds import KINDS

blp = Blueprint("imports", __name__, description="CSV imports of programme records")

CSV_BODY = {
    "required": True,
    "description": "A UTF-8 CSV whose header matches the kind's template; "
    "either the raw body (text/csv) or a multipart field named 'file'.",
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


class ImportResultSchema(Schema):
    """How many rows were imported."""

    kind = fields.String()
    imported = fields.Integer()


def uploaded_bytes() -> bytes:
    """Return the uploaded CSV, from a multipart 'file' field or the raw body."""
    upload = request.files.get("file")
    return upload.read() if upload is not None else request.get_data()


@blp.route("/<string:kind>")
class Import(MethodView):
    """Import one kind of record."""

    @require("staff")
    @blp.doc(
        security=BEARER,
        requestBody=CSV_BODY,
        parameters=[
            {
                "in": "path",
                "name": "kind",
                "required": True,
                "schema": {"type": "string", "enum": sorted(KINDS)},
            }
        ],
    )
    @blp.response(201, ImportResultSchema)
    @document_errors(blp, 401, 403, 404, 413, 422)
    def post(self, kind: str) -> dict[str, Any]:
        """Import a CSV file whole; on any bad row nothing is written and each error is named."""
        found = KINDS.get(kind)
        if found is None:
            abort(404, message=f"Unknown kind {kind!r}; use one of: {', '.join(sorted(KINDS))}.")
        session = db()
        try:
            imported = import_rows(
                session, settings(), kind=found, data=uploaded_bytes(), staff=current_user()
            )
        except ImportError_ as error:
            session.rollback()
            abort(422, message=error.message, errors=error.errors)
        return {"kind": kind, "imported": imported}
