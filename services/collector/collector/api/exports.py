"""Staff take the collected data away: survey answers, long or wide, streamed in flat memory."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import RAISE
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import require
from collector.context import close_db, db, settings
from collector.exports import (
    XLSX,
    ExportError,
    ExportQuerySchema,
    WideExportQuerySchema,
    defused,
    download,
    stream_csv,
    wide_export,
)
from outcomes.models import Facility, Member, SurveyAnswer, SurveyResponse, SurveyRevision

blp = Blueprint("exports", __name__, description="Data exports for staff")

r, v, a, m = (model.__table__.c for model in (SurveyResponse, SurveyRevision, SurveyAnswer, Member))
f = Facility.__table__.c
ANSWERS = (
    select(
        r.year,
        r.member_id,
        defused(m.name).label("member"),
        m.membership_class,
        m.country,
        v.number.label("revision"),
        v.status,
        a.question_key,
        # A per-facility repeat's answer names its facility; the form's other answers none.
        a.facility_id,
        defused(f.name).label("facility"),
        a.value_number,
        defused(a.value_text).label("value_text"),
    )
    .select_from(
        SurveyResponse.__table__.join(SurveyRevision.__table__, v.response_id == r.id)
        .join(SurveyAnswer.__table__, a.revision_id == v.id)
        .join(Member.__table__, m.id == r.member_id)
        .outerjoin(Facility.__table__, f.id == a.facility_id)
    )
    .order_by(a.id)  # the order they were saved in, read along the primary key
)
# What the aggregator counts: the latest accepted revision of each response.
ACCEPTED = ANSWERS.where(v.number == r.accepted_revision)


@blp.route("/answers.csv")
class Answers(MethodView):
    """Survey answers, one row per answer."""

    @require("staff")
    @blp.doc(
        security=BEARER,
        responses={
            "200": {
                "description": "CSV, one row per answer (a repeat's answer names its "
                "facility), in the order they were saved.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    @blp.arguments(ExportQuerySchema, location="query", unknown=RAISE)
    @document_errors(blp, 401, 403, 422)
    def get(self, query: dict[str, str]) -> Response:
        """Download survey answers as CSV, streamed: any size, in flat memory."""
        chosen = ACCEPTED if query["revisions"] == "accepted" else ANSWERS
        close_db()  # the stream may be long: hold no transaction open beside it
        return download(
            stream_csv(settings().database_url, chosen), "survey-answers.csv", "text/csv"
        )


WIDE_DESCRIPTION = (
    "one row per response (or revision), metadata columns starting with _ then a column per "
    "question outside repeats in form order (the union of the chosen years' definitions)"
)
REPEATS = (
    "one row per response (or revision) and facility, keyed by _response_id and _revision, "
    "then _facility_id, _facility and a column per question of a per-facility repeat"
)


@blp.route("/responses.csv")
class WideCsv(MethodView):
    """Survey responses, one row each, a column per question."""

    @require("staff")
    @blp.doc(
        security=BEARER,
        responses={
            "200": {
                "description": f"CSV, {WIDE_DESCRIPTION}; with part=repeats, {REPEATS}.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    @blp.arguments(WideExportQuerySchema, location="query", unknown=RAISE)
    @document_errors(blp, 401, 403, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Download survey responses (or their repeats) as a wide CSV, streamed in flat memory."""
        return _wide(query, "csv")


@blp.route("/responses.xlsx")
class WideXlsx(MethodView):
    """The same as a workbook."""

    @require("staff")
    @blp.doc(
        security=BEARER,
        responses={
            "200": {
                "description": f"A workbook: sheet responses, {WIDE_DESCRIPTION}; sheet "
                f"repeats (if the definitions have repeats), {REPEATS}.",
                "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    @blp.arguments(WideExportQuerySchema, location="query", unknown=RAISE)
    @document_errors(blp, 401, 403, 422)
    def get(self, query: dict[str, Any]) -> Response:
        """Download survey responses as a workbook (1,048,575 rows a sheet; CSV has no limit)."""
        return _wide(query, "xlsx")


def _wide(query: dict[str, Any], extension: str) -> Response:
    """Return a wide export for validated parameters, or answer 422 naming the one at fault."""
    try:
        chunks, name, mimetype = wide_export(db(), settings().database_url, query, extension)
    except ExportError as error:
        abort(422, message=error.message, errors={"query": {error.field: [error.message]}})
    return download(chunks, name, mimetype)
