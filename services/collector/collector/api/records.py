"""Staff read and edit one programme record (the same checks as an imported row)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import RAISE, Schema, fields, validate

from collector.api.common import BEARER, KIND_PARAMETER, document_errors, record_kind
from collector.auth import current_user, require
from collector.context import db, settings
from collector.imports import ImportError_
from collector.kinds import ListQuerySchema, RecordKind, list_records, record_values
from collector.records import update_record
from outcomes.schemas import KEY, BoundedDict, Strict

blp = Blueprint("records", __name__, description="Programme records, one at a time")


class RecordSchema(Schema):
    """A record as the cells of its CSV row (several values separated by ';')."""

    kind = fields.String(dump_only=True)
    id = fields.Integer(dump_only=True)
    values = fields.Dict(keys=fields.String(), values=fields.String(), dump_only=True)


class ListedRecordSchema(Schema):
    """A record in a list: its id and its values, related records by name."""

    id = fields.Integer()
    values = fields.Dict(keys=fields.String(), values=fields.String())


class RecordListSchema(Schema):
    """One page of a kind's records; related records are shown by name, not id."""

    kind = fields.String()
    total = fields.Integer(metadata={"description": "How many records match q."})
    page = fields.Integer()
    pages = fields.Integer()
    per_page = fields.Integer()
    sort = fields.String()
    records = fields.List(fields.Nested(ListedRecordSchema))


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


@blp.route("/<string:kind>")
class Records(MethodView):
    """The records of one kind, searched, sorted and paged."""

    @require("staff")
    @blp.doc(security=BEARER)  # parameters here would hide q, page and sort
    @blp.arguments(ListQuerySchema, location="query", unknown=RAISE)
    @blp.response(200, RecordListSchema)
    @document_errors(blp, 401, 403, 404, 422)
    def get(self, asked: dict[str, Any], kind: str) -> dict[str, Any]:
        """List records whose values or related names contain q; sort by a column; page."""
        found = record_kind(kind)
        try:
            listed = list_records(db(), found, **asked)
        except ValueError as wrong:
            abort(422, message=str(wrong), errors={"query": {"sort": [str(wrong)]}})
        return {"kind": kind, "pages": listed.pages, **vars(listed)}


def _found(kind: str, record_id: int) -> tuple[RecordKind, dict[str, str]]:
    found = record_kind(kind)
    values = record_values(db(), found, record_id)
    if values is None:
        abort(404, message=f"No {found.singular} {record_id}.")
    return found, values


@blp.route("/<string:kind>/<int:record_id>")
class Record(MethodView):
    """One certificate, facility, auditing firm, training, meeting, case study or member."""

    @require("staff")
    @blp.doc(security=BEARER, parameters=KIND_PARAMETER)
    @blp.response(200, RecordSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, kind: str, record_id: int) -> dict[str, Any]:
        """Return a record's values as the cells of its CSV row."""
        _kind, values = _found(kind, record_id)
        return {"kind": kind, "id": record_id, "values": values}

    @require("staff")
    @blp.doc(security=BEARER, parameters=KIND_PARAMETER)
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
