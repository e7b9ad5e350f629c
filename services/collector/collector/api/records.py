"""Staff read and edit one programme record (the same checks as an imported row)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.imports import ImportError_
from collector.kinds import KINDS, RecordKind, record_values
from collector.records import update_record
from outcomes.schemas import KEY, BoundedDict, Strict

blp = Blueprint("records", __name__, description="Programme records, one at a time")

PATH = [
    {
        "in": "path",
        "name": "kind",
        "required": True,
        "schema": {"type": "string", "enum": sorted(KINDS)},
    }
]


class RecordSchema(Schema):
    """A record as the cells of its CSV row (several values separated by ';')."""

    kind = fields.String(dump_only=True)
    id = fields.Integer(dump_only=True)
    values = fields.Dict(keys=fields.String(), values=fields.String(), dump_only=True)


class RecordChangeSchema(Strict):
    """A record's new values: every column of the kind's CSV template, as in an import row."""

    values = BoundedDict(
        keys=KEY,
        required=True,
        validate=validate.Length(max=100),
        metadata={
            "description": "Column → value; dates as YYYY-MM-DD; lists as 'a;b' or a JSON list; "
            "a blank or missing optional column is cleared."
        },
    )


def _found(kind: str, record_id: int) -> tuple[RecordKind, dict[str, str]]:
    found = KINDS.get(kind)
    if found is None:
        abort(404, message=f"Unknown kind {kind!r}; use one of: {', '.join(sorted(KINDS))}.")
    values = record_values(db(), found, record_id)
    if values is None:
        abort(404, message=f"No {found.singular} {record_id}.")
    return found, values


@blp.route("/<string:kind>/<int:record_id>")
class Record(MethodView):
    """One certificate, facility, auditing firm, training, meeting, case study or member."""

    @require("staff")
    @blp.doc(security=BEARER, parameters=PATH)
    @blp.response(200, RecordSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, kind: str, record_id: int) -> dict[str, Any]:
        """Return a record's values as the cells of its CSV row."""
        _kind, values = _found(kind, record_id)
        return {"kind": kind, "id": record_id, "values": values}

    @require("staff")
    @blp.doc(security=BEARER, parameters=PATH)
    @blp.arguments(RecordChangeSchema)
    @blp.response(200, RecordSchema)
    @document_errors(blp, 401, 403, 404, 422)
    def put(self, change: dict[str, Any], kind: str, record_id: int) -> dict[str, Any]:
        """Replace a record's values; on any error nothing changes and each field is named."""
        found, _values = _found(kind, record_id)
        raw = {k: v for k, v in change["values"].items() if v not in (None, "", [])}
        session = db()
        try:
            values = update_record(
                session, settings(), kind=found, record_id=record_id, raw=raw, staff=current_user()
            )
        except ImportError_ as error:
            session.rollback()
            abort(422, message=error.message, errors={"json": {"values": error.errors}})
        return {"kind": kind, "id": record_id, "values": values}
