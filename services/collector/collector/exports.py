"""Survey data for analysts: one row per response with a column per question, streamed.

The pivot runs in the database: the typed answers of each chosen revision are grouped by
revision, one `max(...) FILTER (WHERE question_key = ...)` per question. PostgreSQL streams it
with `COPY (SELECT ...) TO STDOUT`; SQLite through a server-side cursor. Either way memory
stays flat whatever the size. A per-facility repeat's questions are a second part: a row per
response and facility. See docs/exports.md for the columns.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
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
    Subquery,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from outcomes.db import get_engine
from outcomes.models import (
    Facility,
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
# The repeats part's metadata: its rows join the responses part on _response_id and _revision.
REPEAT_METADATA = ("_response_id", "_revision", "_facility_id", "_facility")
PARTS = ("responses", "repeats")

r, v, a, m = (model.__table__.c for model in (SurveyResponse, SurveyRevision, SurveyAnswer, Member))
_d, _q, _f = SurveyDefinition.__table__.c, SurveyQuestion.__table__.c, Facility.__table__.c


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
    part = fields.String(
        validate=validate.OneOf(PARTS, error="Must be one of: {choices}."),
        metadata={
            "description": "responses: a row per response, a column per question outside "
            "repeats (the CSV's default); repeats: a row per response and facility, a column "
            "per question of a per-facility repeat; a workbook holds both sheets if left out"
        },
    )


def wide_export(
    session: Session, url: str, query: dict[str, Any], extension: str
) -> tuple[Iterator[bytes], str, str]:
    """Return the chunks, file name and media type of a wide export, or raise ExportError."""
    year = query.get("year")
    questions = wide_questions(session, year=year)
    options = {
        "year": year,
        "accepted": query["revisions"] == "accepted",
        "labels": query["values"] == "labels",
    }
    statements = {
        "responses": wide_query(questions, **options),
        "repeats": repeats_query(questions, **options),
    }
    part = query.get("part")
    # The stream may be long: hold no transaction open beside it.
    session.close()
    suffix = "-repeats" if part == "repeats" else ""
    name = f"survey-responses-{year or 'all-years'}-{query['revisions']}{suffix}.{extension}"
    if extension == "csv":
        return stream_csv(url, statements[part or "responses"]), name, "text/csv"
    if part is not None:
        sheets = [(part, statements[part])]
    else:
        # A form without repeats keeps its one-sheet workbook.
        sheets = [("responses", statements["responses"])]
        if any("repeats" in q.parts for q in questions):
            sheets.append(("repeats", statements["repeats"]))
    if any(count_rows(url, statement) > XLSX_MAX_ROWS for _name, statement in sheets):
        raise ExportError(
            "year", f"A worksheet holds {XLSX_MAX_ROWS:,} rows: choose a year, or CSV."
        )
    return stream_xlsx(url, sheets), name, XLSX


@dataclass(frozen=True)
class Question:
    """One column of the wide export."""

    key: str
    type: str
    choices: tuple[tuple[str, str], ...]  # (code, label)
    # The parts it is a column of: a key may sit in a repeat in one year's form, not another's.
    parts: frozenset[str] = frozenset(("responses",))


def wide_questions(session: Session, *, year: int | None) -> list[Question]:
    """Return the columns of a year's definitions (all years if None) in form order.

    Definitions differ between years and versions: the columns are their union, in the newest
    definition's order, then the questions only older definitions ask, in theirs.
    """
    query = (
        select(_q.key, _q.type, _q.choices, _q.logic)
        .join(SurveyDefinition.__table__, _d.id == _q.definition_id)
        .order_by(_d.year.desc(), _d.version.desc(), _q.position)
    )
    if year is not None:
        query = query.where(_d.year == year)
    found: dict[str, Question] = {}
    for key, kind, choices, logic in session.execute(query):
        pairs = tuple((str(c["name"]), str(c.get("label") or c["name"])) for c in choices or ())
        part = "repeats" if (logic or {}).get("repeat") else "responses"
        known = found.setdefault(key, Question(key, kind, pairs, frozenset((part,))))
        found[key] = replace(known, parts=known.parts | {part})
    if year is not None and not found:
        raise ExportError("year", f"There is no survey definition for {year}.")
    return list(found.values())


def _chosen(year: int | None, accepted: bool) -> list[ColumnElement[bool]]:
    """Return the conditions on a revision that a year and the `revisions` choice make."""
    where = [r.year == year] if year is not None else []
    if accepted:
        # What the aggregator counts: the latest accepted revision of each response.
        where += [v.number == r.accepted_revision]
    return where


def _pivot(
    questions: list[Question], where: list[ColumnElement[bool]], labels: bool, *, repeats: bool
) -> tuple[Subquery, list[ColumnElement[Any]]]:
    """Return answers pivoted by revision (and facility, for repeats), and the cells to select."""
    by = [a.revision_id, a.facility_id] if repeats else [a.revision_id]
    # A repeat's answers carry their facility; the form's other answers none. Each cell filters
    # by it, so a revision answering only a repeat's questions still has its responses row.
    part = a.facility_id.is_not(None) if repeats else a.facility_id.is_(None)
    pivot = (
        select(
            *by,
            *(
                func.max(_value(q, labels)).filter(a.question_key == q.key, part).label(f"q{i}")
                for i, q in enumerate(questions)
            ),
        )
        .join(SurveyRevision.__table__, v.id == a.revision_id)
        .join(SurveyResponse.__table__, r.id == v.response_id)
        .where(*where)
        .group_by(*by)
    )
    if repeats:
        # Only the repeats' answers are read: the rest of each revision is the other part.
        pivot = pivot.where(part, a.question_key.in_([q.key for q in questions]))
    found = pivot.subquery("pivot")
    cells: list[ColumnElement[Any]] = [
        (defused(found.c[f"q{i}"]) if _is_text(q, labels) else found.c[f"q{i}"]).label(q.key)
        for i, q in enumerate(questions)
    ]
    return found, cells


def wide_query(
    questions: list[Question], *, year: int | None, accepted: bool, labels: bool
) -> Select:
    """Return the one statement that yields a row per revision and a column per question."""
    where = _chosen(year, accepted)
    pivot, cells = _pivot(
        [q for q in questions if "responses" in q.parts], where, labels, repeats=False
    )
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


def repeats_query(
    questions: list[Question], *, year: int | None, accepted: bool, labels: bool
) -> Select:
    """Return the one statement that yields a row per revision and facility answered for."""
    where = _chosen(year, accepted)
    pivot, cells = _pivot(
        [q for q in questions if "repeats" in q.parts], where, labels, repeats=True
    )
    metadata = (r.id, v.number, _f.id, defused(_f.name))
    return (
        select(
            *(col.label(name) for col, name in zip(metadata, REPEAT_METADATA, strict=True)),
            *cells,
        )
        .select_from(
            pivot.join(SurveyRevision.__table__, v.id == pivot.c.revision_id)
            .join(SurveyResponse.__table__, r.id == v.response_id)
            .join(Facility.__table__, _f.id == pivot.c.facility_id)
        )
        .order_by(r.year, r.member_id, v.number, _f.name, _f.id)
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


def stream_xlsx(url: str, sheets: list[tuple[str, Select]]) -> Iterator[bytes]:
    """Yield a workbook of a sheet per (name, statement), built on disk in flat memory."""
    # openpyxl's write-only mode streams rows to a temporary file; the zip is made at save.
    with tempfile.TemporaryDirectory(prefix="outcomes-export-") as folder:
        path = os.path.join(folder, "export.xlsx")
        book = Workbook(write_only=True)
        with get_engine(url).connect() as conn:
            for name, query in sheets:
                sheet = book.create_sheet(name)
                sheet.append(list(query.selected_columns.keys()))
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
