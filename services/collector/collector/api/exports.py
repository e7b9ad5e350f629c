"""Staff take the collected data away: accepted survey answers as CSV, streamed row by row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import Select, select

from collector.api.common import BEARER, document_errors
from collector.auth import require
from collector.context import settings
from outcomes.db import get_engine
from outcomes.models import Member, SurveyAnswer, SurveyResponse, SurveyRevision

blp = Blueprint("exports", __name__, description="Data exports for staff")

# Rows fetched from the database cursor per CSV chunk: memory stays flat whatever the size.
CHUNK_ROWS = 2000
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

r, v, a, m = (model.__table__.c for model in (SurveyResponse, SurveyRevision, SurveyAnswer, Member))
ANSWERS = (
    select(
        r.year,
        r.member_id,
        m.name.label("member"),
        m.membership_class,
        m.country,
        v.number.label("revision"),
        v.status,
        a.question_key,
        a.value_number,
        a.value_text,
    )
    .select_from(
        SurveyResponse.__table__.join(SurveyRevision.__table__, v.response_id == r.id)
        .join(SurveyAnswer.__table__, a.revision_id == v.id)
        .join(Member.__table__, m.id == r.member_id)
    )
    .order_by(a.id)  # the order they were saved in, read along the primary key
)
# What the aggregator counts: the latest accepted revision of each response.
ACCEPTED = ANSWERS.where(v.number == r.accepted_revision)
TEXT_COLUMNS = ("member", "question_key", "value_text")


class ExportQuerySchema(Schema):
    """Which answers to export."""

    class Meta:
        unknown = RAISE

    revisions = fields.String(
        load_default="accepted",
        validate=validate.OneOf(("accepted", "all"), error="Must be one of: {choices}."),
        metadata={
            "description": "accepted: the latest accepted revision of each response (what the "
            "public figures count); all: every revision of every response, drafts included"
        },
    )


@blp.route("/answers.csv")
class Answers(MethodView):
    """Survey answers."""

    @require("staff")
    @blp.doc(
        security=BEARER,
        responses={
            "200": {
                "description": "CSV, one row per answer, in the order they were saved.",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        },
    )
    @blp.arguments(ExportQuerySchema, location="query", unknown=RAISE)
    @document_errors(blp, 401, 403, 422)
    def get(self, query: dict[str, str]) -> Response:
        """Download survey answers as CSV, streamed: any size, in flat memory."""
        chosen = ACCEPTED if query["revisions"] == "accepted" else ANSWERS
        return Response(
            stream_with_context(_csv(settings().database_url, chosen)),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="survey-answers.csv"'},
        )


def _csv(url: str, query: Select) -> Iterator[str]:
    """Yield the CSV in chunks, read through a server-side cursor."""
    columns = list(query.selected_columns.keys())
    text = [columns.index(name) for name in TEXT_COLUMNS]
    yield _lines([columns])
    with get_engine(url).connect() as conn:
        result = conn.execution_options(yield_per=CHUNK_ROWS).execute(query)
        for rows in result.partitions():
            yield _lines([_defused(row, text) for row in rows])


def _defused(row: Iterable[Any], text: list[int]) -> list[Any]:
    """Return a row whose text cells a spreadsheet shows as text, never runs as a formula."""
    cells = list(row)
    for i in text:
        if isinstance(cells[i], str) and cells[i].startswith(FORMULA_STARTS):
            cells[i] = "'" + cells[i]
    return cells


def _lines(rows: list[list[Any]]) -> str:
    """Return rows as CSV text."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
