"""Survey data for analysts: one row per response with a column per question, streamed.

The pivot runs in the database: the typed answers of each chosen revision are grouped by
revision, one `max(...) FILTER (WHERE question_key = ...)` per question. PostgreSQL streams it
with `COPY (SELECT ...) TO STDOUT`; SQLite through a server-side cursor. Either way memory
stays flat whatever the size. See docs/exports.md for the columns and what is planned for
repeats.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Response, stream_with_context
from marshmallow import RAISE, Schema, fields, validate
from openpyxl import Workbook
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from outcomes.db import get_engine
from outcomes.models import (
    Member,
    SurveyAnswer,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.schemas import REPORTING_YEARS

# Rows fetched from the database cursor per CSV chunk: memory stays flat whatever the size.
CHUNK_ROWS = 2000
# Bytes of COPY output gathered before they are handed to the server (one write per row is slow).
CHUNK_BYTES = 64 * 1024
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A worksheet holds 1,048,576 rows, the header included.
XLSX_MAX_ROWS = 1_048_575
# Metadata columns start with "_" (as Kobo's do): question keys cannot, so names never clash.
METADATA = ("_response_id", "_member_id", "_member", "_year", "_status", "_revision")
SUBMITTED_AT = "_submitted_at"

r, v, a, m = (model.__table__.c for model in (SurveyResponse, SurveyRevision, SurveyAnswer, Member))
_d, _q = SurveyDefinition.__table__.c, SurveyQuestion.__table__.c


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class ExportError(Exception):
    """A request for an export that cannot be answered: the parameter at fault and why."""

    field: str
    message: str


class ExportQuerySchema(Schema):
    """Which revisions to export."""

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


class WideExportQuerySchema(ExportQuerySchema):
    """Which responses to export, and how to show the answers."""

    year = fields.Integer(
        validate=REPORTING_YEARS,
        metadata={"description": "one reporting year; every year if left out"},
    )
    values = fields.String(
        load_default="codes",
        validate=validate.OneOf(("codes", "labels"), error="Must be one of: {choices}."),
        metadata={
            "description": "codes: choice names, yes/no as 1/0; labels: choice labels, yes/no"
        },
    )


def wide_export(
    session: Session, url: str, query: dict[str, Any], extension: str
) -> tuple[Iterator[bytes], str, str]:
    """Return the chunks, file name and media type of a wide export, or raise ExportError."""
    year = query.get("year")
    statement = wide_query(
        wide_questions(session, year=year),
        year=year,
        accepted=query["revisions"] == "accepted",
        labels=query["values"] == "labels",
    )
    # The stream may be long: hold no transaction open beside it.
    session.close()
    name = f"survey-responses-{year or 'all-years'}-{query['revisions']}.{extension}"
    if extension == "csv":
        return stream_csv(url, statement), name, "text/csv"
    if count_rows(url, statement) > XLSX_MAX_ROWS:
        raise ExportError(
            "year", f"A worksheet holds {XLSX_MAX_ROWS:,} rows: choose a year, or CSV."
        )
    return stream_xlsx(url, statement), name, XLSX


@dataclass(frozen=True)
class Question:
    """One column of the wide export."""

    key: str
    type: str
    choices: tuple[tuple[str, str], ...]  # (code, label)


def wide_questions(session: Session, *, year: int | None) -> list[Question]:
    """Return the columns of a year's definitions (all years if None) in form order.

    Definitions differ between years and versions: the columns are their union, in the newest
    definition's order, then the questions only older definitions ask, in theirs.
    """
    query = (
        select(_q.key, _q.type, _q.choices)
        .join(SurveyDefinition.__table__, _d.id == _q.definition_id)
        .order_by(_d.year.desc(), _d.version.desc(), _q.position)
    )
    if year is not None:
        query = query.where(_d.year == year)
    found: dict[str, Question] = {}
    for key, kind, choices in session.execute(query):
        pairs = tuple((str(c["name"]), str(c.get("label") or c["name"])) for c in choices or ())
        found.setdefault(key, Question(key, kind, pairs))
    if year is not None and not found:
        raise ExportError("year", f"There is no survey definition for {year}.")
    return list(found.values())


def wide_query(
    questions: list[Question], *, year: int | None, accepted: bool, labels: bool
) -> Select:
    """Return the one statement that yields a row per revision and a column per question."""
    where = [r.year == year] if year is not None else []
    if accepted:
        # What the aggregator counts: the latest accepted revision of each response.
        where += [v.number == r.accepted_revision]
    pivot = (
        select(
            a.revision_id,
            *(
                func.max(_value(q, labels)).filter(a.question_key == q.key).label(f"q{i}")
                for i, q in enumerate(questions)
            ),
        )
        .join(SurveyRevision.__table__, v.id == a.revision_id)
        .join(SurveyResponse.__table__, r.id == v.response_id)
        .where(*where)
        .group_by(a.revision_id)
        .subquery("pivot")
    )
    cells = [
        (defused(pivot.c[f"q{i}"]) if _is_text(q, labels) else pivot.c[f"q{i}"]).label(q.key)
        for i, q in enumerate(questions)
    ]
    status = case(
        (v.number == r.accepted_revision, literal("accepted")),
        (v.number == r.current_revision, r.status),
        else_=v.status,
    )
    metadata = (r.id, r.member_id, defused(m.name), r.year, status, v.number, v.created_at)
    names = (*METADATA, SUBMITTED_AT)
    return (
        select(
            *(col.label(name) for col, name in zip(metadata, names, strict=True)),
            *cells,
        )
        .select_from(
            SurveyRevision.__table__.join(SurveyResponse.__table__, r.id == v.response_id)
            .join(Member.__table__, m.id == r.member_id)
            .outerjoin(pivot, pivot.c.revision_id == v.id)
        )
        .where(*where)
        .order_by(r.year, r.member_id, v.number)
    )


def _value(question: Question, labels: bool) -> ColumnElement[Any]:
    """Return the SQL for one question's cell: the stored code, or its label."""
    kind = question.type
    if kind == "integer":
        return cast(a.value_number, BigInteger)
    if kind == "decimal":
        return a.value_number
    if kind == "boolean":
        return (
            case((a.value_number == 1, "yes"), else_="no")
            if labels
            else cast(a.value_number, Integer)
        )
    if labels and question.choices and kind == "select_one":
        return case(dict(question.choices), value=a.value_text, else_=a.value_text)
    if labels and question.choices and kind == "select_many":
        # Stored as the codes joined by ";": each chosen code's label, in the choices' order.
        framed = literal(";", String) + a.value_text + literal(";", String)
        chosen = [
            case((framed.contains(f";{code};", autoescape=True), literal(f"{label};")), else_="")
            for code, label in question.choices
        ]
        joined = chosen[0]
        for part in chosen[1:]:
            joined = joined + part
        return func.rtrim(joined, ";", type_=String)
    return a.value_text


def _is_text(question: Question, labels: bool) -> bool:
    """Tell whether a question's cells are text (which a spreadsheet could run as a formula)."""
    return question.type not in ("integer", "decimal", "boolean") or (
        labels and question.type == "boolean"
    )


def defused(text: ColumnElement[Any]) -> ColumnElement[Any]:
    """Return text that a spreadsheet shows as text, never runs as a formula."""
    starts = func.substr(text, 1, 1).in_(FORMULA_STARTS)
    return case((starts, literal("'", String) + text), else_=text)


def download(chunks: Iterator[bytes], filename: str, mimetype: str) -> Response:
    """Return a streamed attachment; the request's context stays open while it streams."""
    return Response(
        stream_with_context(chunks),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def is_postgresql(url: str) -> bool:
    """Tell whether a database URL names PostgreSQL."""
    return url.startswith("postgresql")


def stream_csv(url: str, query: Select) -> Iterator[bytes]:
    """Yield a statement's rows as CSV: through COPY on PostgreSQL, a cursor on SQLite."""
    return _copy_csv(url, query) if is_postgresql(url) else _cursor_csv(url, query)


def _copy_csv(url: str, query: Select) -> Iterator[bytes]:
    """Yield `COPY (query) TO STDOUT` in chunks; closing the iterator cancels the COPY."""
    engine = get_engine(url)
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    statement = f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv, HEADER)"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        # A client that goes away closes this generator: psycopg then cancels the COPY, and
        # leaving the `with` rolls back and returns the connection to the pool.
        with raw.cursor() as cursor, cursor.copy(statement, compiled.params) as copy:
            chunk = bytearray()
            for block in copy:
                chunk += block
                if len(chunk) >= CHUNK_BYTES:
                    yield bytes(chunk)
                    chunk.clear()
            yield bytes(chunk)


def _cursor_csv(url: str, query: Select) -> Iterator[bytes]:
    """Yield a statement's rows as CSV from a server-side cursor, chunk by chunk."""
    yield lines([list(query.selected_columns.keys())])
    with get_engine(url).connect() as conn:
        result = conn.execution_options(yield_per=CHUNK_ROWS).execute(query)
        for rows in result.partitions():
            yield lines(rows)


def count_rows(url: str, query: Select) -> int:
    """Return how many rows a statement yields."""
    with get_engine(url).connect() as conn:
        return conn.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def stream_xlsx(url: str, query: Select) -> Iterator[bytes]:
    """Yield a one-sheet workbook of a statement's rows, built on disk in flat memory."""
    # openpyxl's write-only mode streams rows to a temporary file; the zip is made at save.
    with tempfile.TemporaryDirectory(prefix="outcomes-export-") as folder:
        path = os.path.join(folder, "export.xlsx")
        book = Workbook(write_only=True)
        sheet = book.create_sheet("responses")
        sheet.append(list(query.selected_columns.keys()))
        with get_engine(url).connect() as conn:
            result = conn.execution_options(yield_per=CHUNK_ROWS).execute(query)
            for row in result:
                sheet.append([_cell(value) for value in row])
        book.save(path)
        with open(path, "rb") as file:
            while block := file.read(CHUNK_BYTES):
                yield block


def _cell(value: Any) -> Any:
    """Return a value as a worksheet cell takes it (time zones are not kept by Excel)."""
    if hasattr(value, "tzinfo") and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    return value


def lines(rows: Iterable[Iterable[Any]]) -> bytes:
    """Return rows as CSV bytes (UTF-8)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()
