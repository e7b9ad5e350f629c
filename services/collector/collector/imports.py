"""CSV imports of programme records: every row valid and inserted, or nothing written."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from outcomes.config import Settings
from outcomes.models import (
    CERTIFICATE_KINDS,
    MEETING_BODIES,
    MEMBERSHIP_CLASSES,
    STANDARDS,
    TRAINING_ROLES,
    AuditingFirm,
    AuditLog,
    CaseStudy,
    Certificate,
    ExternalCertification,
    Facility,
    Meeting,
    Member,
    Training,
    User,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)
from outcomes.queue import enqueue, request_aggregation
from outcomes.schemas import Country, validate_country

MAX_ROWS = 50_000


class ImportError_(Exception):
    """A file refused whole, with errors by row and column (or for the file or header)."""

    def __init__(self, message: str, errors: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class ListOf(fields.Field):
    """A cell holding several values separated by ';' (e.g. "DE;FR")."""

    def __init__(self, inner: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        # A JSON body may send a list; a CSV cell or a form field sends "a;b".
        parts = value if isinstance(value, list) else str(value or "").split(";")
        items = [str(part).strip() for part in parts if str(part).strip()]
        if self.inner is None:
            return items
        try:
            return [self.inner(item) for item in items]
        except (ValueError, ValidationError) as error:
            raise ValidationError(f"Each value separated by ';' must be valid: {error}") from None


def _countries(value: str) -> str:
    code = value.upper()
    validate_country(code)
    return code


def _optional_date() -> fields.Date:
    return fields.Date(load_default=None, allow_none=True)


def _ordered(first: str, then: str, words: str) -> Callable[..., None]:
    """Return a schema check that one date does not come before another."""

    @validates_schema
    def check(self: Schema, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get(first) and data.get(then) and data[then] < data[first]:
            raise ValidationError(
                f"{words} ({data[then]}) comes before {first} ({data[first]}).", then
            )

    return check


class Row(Schema):
    """A CSV row: blank cells count as missing."""

    class Meta:
        unknown = "raise"


class MemberRow(Row):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    membership_class = fields.String(required=True, validate=validate.OneOf(MEMBERSHIP_CLASSES))
    country = Country(required=True)
    joined_on = fields.Date(required=True)
    left_on = _optional_date()
    _order = _ordered("joined_on", "left_on", "left_on")


class FacilityRow(Row):
    member_id = fields.Integer(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = Country(required=True)
    people = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))


class AuditingFirmRow(Row):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    accredited_on = fields.Date(required=True)
    accreditation_ends_on = _optional_date()
    countries = ListOf(_countries, required=True)
    _order = _ordered("accredited_on", "accreditation_ends_on", "accreditation_ends_on")


class CertificateRow(Row):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    member_id = fields.Integer(required=True)
    standard = fields.String(required=True, validate=validate.OneOf(STANDARDS))
    kind = fields.String(required=True, validate=validate.OneOf(CERTIFICATE_KINDS))
    audit_type = fields.String(required=True, validate=validate.Length(min=1, max=40))
    issued_on = fields.Date(required=True)
    expires_on = fields.Date(required=True)
    withdrawn_on = _optional_date()
    auditing_firm = fields.String(load_default=None, allow_none=True)
    facility_ids = ListOf(int, load_default=list)
    external_certifications = ListOf(load_default=list)
    _order = _ordered("issued_on", "expires_on", "expires_on")
    _withdrawn = _ordered("issued_on", "withdrawn_on", "withdrawn_on")


class TrainingRow(Row):
    person_key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.String(required=True, validate=validate.OneOf(TRAINING_ROLES))
    course = fields.String(required=True, validate=validate.Length(min=1, max=200))
    completed_on = fields.Date(required=True)


class MeetingRow(Row):
    body = fields.String(required=True, validate=validate.OneOf(MEETING_BODIES))
    held_on = fields.Date(required=True)


class CaseStudyRow(Row):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    member_id = fields.Integer(load_default=None, allow_none=True)
    country = Country(required=True)
    summary = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    # Shown as a link on the dashboard: web addresses only (never javascript:, data: or ftp:).
    link = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"})


@dataclass(frozen=True)
class ImportKind:
    """One kind of record a CSV (or the staff form) can bring in."""

    name: str
    schema: type[Row]
    example: dict[str, str]

    @property
    def singular(self) -> str:
        """Name one record of the kind in words ("facility", "case study")."""
        words = self.name.replace("_", " ")
        return words[:-3] + "y" if words.endswith("ies") else words[:-1]

    @property
    def columns(self) -> list[str]:
        return list(self.schema().fields)

    def inputs(self) -> list[dict[str, Any]]:
        """Describe the form input of each column: its name, kind, choices and whether required."""
        described = []
        for name, field in self.schema().fields.items():
            choices = next(
                (list(v.choices) for v in field.validators if isinstance(v, validate.OneOf)), []
            )
            kind = "date" if isinstance(field, fields.Date) else "text"
            described.append(
                {"name": name, "type": kind, "choices": choices, "required": field.required}
            )
        return described


KINDS = {
    kind.name: kind
    for kind in (
        ImportKind(
            "members",
            MemberRow,
            {
                "name": "Bauxite Co",
                "membership_class": "Civil Society",
                "country": "GH",
                "joined_on": "2021-03-01",
                "left_on": "",
            },
        ),
        ImportKind(
            "facilities",
            FacilityRow,
            {"member_id": "1", "name": "Mine A", "country": "GH", "people": "420"},
        ),
        ImportKind(
            "auditing_firms",
            AuditingFirmRow,
            {
                "name": "Audit AG",
                "accredited_on": "2019-01-01",
                "accreditation_ends_on": "",
                "countries": "DE;FR",
            },
        ),
        ImportKind(
            "certificates",
            CertificateRow,
            {
                "number": "PS-0001",
                "member_id": "1",
                "standard": "PS",
                "kind": "full",
                "audit_type": "initial",
                "issued_on": "2022-05-01",
                "expires_on": "2025-05-01",
                "withdrawn_on": "",
                "auditing_firm": "Audit AG",
                "facility_ids": "1;2",
                "external_certifications": "ISO14001",
            },
        ),
        ImportKind(
            "trainings",
            TrainingRow,
            {
                "person_key": "p-7f3a",
                "role": "auditor",
                "course": "PS auditor course",
                "completed_on": "2023-06-30",
            },
        ),
        ImportKind("meetings", MeetingRow, {"body": "board", "held_on": "2024-02-15"}),
        ImportKind(
            "case_studies",
            CaseStudyRow,
            {
                "title": "Water in Ghana",
                "member_id": "1",
                "country": "GH",
                "summary": "How a mine cut its water use.",
                "link": "https://example.org/story",
            },
        ),
    )
}


def template_csv(kind: ImportKind) -> str:
    """Return a CSV with the kind's header and one example row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=kind.columns, lineterminator="\n")
    writer.writeheader()
    writer.writerow(kind.example)
    return out.getvalue()


def read_csv(kind: ImportKind, data: bytes) -> list[dict[str, Any]]:
    """Decode, check the header and validate every row; raise with every problem found."""
    raw, shape = parse_csv(kind, data)
    return validate_rows(kind, raw, shape)


def parse_csv(
    kind: ImportKind, data: bytes
) -> tuple[list[dict[str, str]], dict[int, dict[str, list[str]]]]:
    """Return a CSV's non-blank cells by row, and the rows whose shape is wrong."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportError_(
            "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again.",
            {"file": [f"Byte {error.start} is not valid UTF-8."]},
        ) from None
    if "\x00" in text:
        # No text column can hold one in PostgreSQL; spreadsheet exports in UTF-16 are full of them.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportError_(
            "The file contains NUL characters. Save it as 'CSV UTF-8' and upload it again.",
            {"file": [f"Line {line} contains a NUL character (\\0)."]},
        )
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if header != kind.columns:
        missing = [c for c in kind.columns if c not in header]
        unknown = [c for c in header if c not in kind.columns]
        raise ImportError_(
            "The header row does not match the template: download it and keep its first row.",
            {
                "header": [
                    f"Expected: {','.join(kind.columns)}",
                    f"Missing: {missing}",
                    f"Unknown: {unknown}",
                ]
            },
        )
    reader.fieldnames = header
    raw: list[dict[str, str]] = []
    shape: dict[int, dict[str, list[str]]] = {}
    for index, row in enumerate(reader):
        if None in row or any(value is None for value in row.values()):
            shape[index] = {"row": ["This row has a different number of cells than the header."]}
        raw.append({k: v.strip() for k, v in row.items() if k is not None and v and v.strip()})
        if len(raw) > MAX_ROWS:
            raise ImportError_(f"At most {MAX_ROWS} rows per file.", {"file": ["Too many rows."]})
    if not raw:
        raise ImportError_("The file has a header but no rows.", {"file": ["No rows."]})
    return raw, shape


def validate_rows(
    kind: ImportKind, raw: list[dict[str, str]], shape: dict[int, dict[str, list[str]]]
) -> list[dict[str, Any]]:
    """Load rows of text through the kind's schema, raising with every row's errors."""
    loaded: list[dict[str, Any]] = []
    try:
        loaded = kind.schema(many=True).load(raw)
    except ValidationError as error:
        shape = _merge(shape, {int(i): e for i, e in error.messages.items()})
    if shape:
        raise ImportError_(
            "Nothing was imported: correct the rows below and upload the whole file again.",
            {"rows": _by_line(shape)},
        )
    return loaded


def _by_line(messages: Any) -> dict[str, Any]:
    """Key row errors by the file's line number (the header is line 1)."""
    return {str(int(index) + 2): errors for index, errors in sorted(messages.items())}


def import_rows(
    session: Session, settings: Settings, *, kind: ImportKind, data: bytes, staff: User
) -> int:
    """Import a CSV whole (and ask for re-aggregation) or raise ImportError_ writing nothing."""
    raw, shape = parse_csv(kind, data)
    return save_rows(session, settings, kind=kind, raw=raw, staff=staff, shape=shape)


def save_rows(
    session: Session,
    settings: Settings,
    *,
    kind: ImportKind,
    raw: list[dict[str, str]],
    staff: User,
    shape: dict[int, dict[str, list[str]]] | None = None,
) -> int:
    """Validate rows of text (from a file or a form), check references, insert them all or none."""
    rows = validate_rows(kind, raw, shape or {})
    problems = check_rows(session, kind, rows)
    if problems:
        raise ImportError_(
            "Nothing was imported: correct the rows below and upload the whole file again.",
            {"rows": _by_line(problems)},
        )
    WRITERS[kind.name](session, rows)
    outbox = request_aggregation(session, reason=f"import {kind.name}", requested_by=staff.id)
    session.add(
        AuditLog(
            actor_id=staff.id,
            action=f"import.{kind.name}",
            object_type=kind.name,
            details={"rows": len(rows)},
        )
    )
    session.commit()
    enqueue(settings, outbox)
    return len(rows)


def _unknown(
    session: Session, rows: list[dict], column: str, model_column: Any, label: str
) -> dict[int, dict[str, list[str]]]:
    """Report rows whose reference names no stored record (one query for the whole file)."""
    wanted = {row[column] for row in rows if row.get(column) is not None}
    known = (
        set(session.scalars(select(model_column).where(model_column.in_(wanted))))
        if wanted
        else set()
    )
    return {
        i: {column: [f"No {label} {row[column]!r}."]}
        for i, row in enumerate(rows)
        if row.get(column) is not None and row[column] not in known
    }


def _taken(
    session: Session,
    rows: list[dict],
    column: str,
    model_column: Any,
    model_id: Any,
    editing: int | None,
    label: str,
) -> dict[int, dict[str, list[str]]]:
    """Report rows whose unique value is stored already (but by the record being edited) or
    repeated in the file (one query for the whole file)."""
    counts = Counter(row[column] for row in rows)
    stored = select(model_column).where(model_column.in_(list(counts)), model_id != (editing or 0))
    taken = set(session.scalars(stored))
    return {
        i: {
            column: [
                f"{label} {row[column]} is already recorded."
                if row[column] in taken
                else f"{label} {row[column]} appears more than once in the file."
            ]
        }
        for i, row in enumerate(rows)
        if row[column] in taken or counts[row[column]] > 1
    }


def _merge(*reports: dict[int, dict[str, list[str]]]) -> dict[int, dict[str, list[str]]]:
    merged: dict[int, dict[str, list[str]]] = {}
    for report in reports:
        for index, errors in report.items():
            for column, messages in errors.items():
                merged.setdefault(index, {}).setdefault(column, []).extend(messages)
    return merged


def check_rows(
    session: Session, kind: ImportKind, rows: list[dict], *, editing: int | None = None
) -> dict[int, dict[str, list[str]]]:
    """Return the rows' problems the schema cannot see: references, duplicates (bar `editing`)."""
    check = CHECKS.get(kind.name)
    return check(session, rows, editing) if check else {}


def _check_member_refs(session: Session, rows: list[dict], _editing: int | None = None) -> dict:
    return _unknown(session, rows, "member_id", Member.id, "member with id")


def _check_firms(session: Session, rows: list[dict], editing: int | None = None) -> dict:
    return _taken(
        session, rows, "name", AuditingFirm.name, AuditingFirm.id, editing, "Auditing firm"
    )


def _check_certificates(session: Session, rows: list[dict], editing: int | None = None) -> dict:
    duplicates = _taken(
        session, rows, "number", Certificate.number, Certificate.id, editing, "Certificate number"
    )
    facility_ids = {f for row in rows for f in row["facility_ids"]}
    facilities = (
        dict(
            session.execute(
                select(Facility.id, Facility.member_id).where(Facility.id.in_(facility_ids))
            ).all()
        )
        if facility_ids
        else {}
    )
    wrong_facilities = {
        i: {
            "facility_ids": [
                f"Facility {f} does not exist or belongs to another member."
                for f in row["facility_ids"]
                if facilities.get(f) != row["member_id"]
            ]
        }
        for i, row in enumerate(rows)
        if any(facilities.get(f) != row["member_id"] for f in row["facility_ids"])
    }
    codes = {c for row in rows for c in row["external_certifications"]}
    known_codes = (
        set(
            session.scalars(
                select(ExternalCertification.code).where(ExternalCertification.code.in_(codes))
            )
        )
        if codes
        else set()
    )
    wrong_codes = {
        i: {
            "external_certifications": [
                f"Unknown external certification {c!r}."
                for c in row["external_certifications"]
                if c not in known_codes
            ]
        }
        for i, row in enumerate(rows)
        if any(c not in known_codes for c in row["external_certifications"])
    }
    return _merge(
        duplicates,
        _check_member_refs(session, rows),
        _unknown(session, rows, "auditing_firm", AuditingFirm.name, "auditing firm named"),
        wrong_facilities,
        wrong_codes,
    )


CHECKS: dict[str, Callable[[Session, list[dict], int | None], dict]] = {
    "facilities": _check_member_refs,
    "auditing_firms": _check_firms,
    "certificates": _check_certificates,
    "case_studies": _check_member_refs,
}


def _bulk(session: Session, model: Any, rows: list[dict]) -> list[int]:
    """Insert rows in one set-based statement and return their ids in file order."""
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _link(session: Session, table: Table, pairs: list[dict]) -> None:
    if pairs:
        session.execute(insert(table), pairs)


def _write_plain(model: Any) -> Callable[[Session, list[dict]], None]:
    def write(session: Session, rows: list[dict]) -> None:
        session.execute(insert(model), rows)

    return write


def _write_firms(session: Session, rows: list[dict]) -> None:
    ids = _bulk(
        session, AuditingFirm, [{k: v for k, v in r.items() if k != "countries"} for r in rows]
    )
    _link(
        session,
        auditing_firm_country,
        [
            {"firm_id": i, "country": c}
            for i, r in zip(ids, rows, strict=True)
            for c in set(r["countries"])
        ],
    )


def _write_certificates(session: Session, rows: list[dict]) -> None:
    firms = dict(session.execute(select(AuditingFirm.name, AuditingFirm.id)).all())
    codes = dict(
        session.execute(select(ExternalCertification.code, ExternalCertification.id)).all()
    )
    plain = [
        {
            **{
                k: v
                for k, v in r.items()
                if k not in {"auditing_firm", "facility_ids", "external_certifications"}
            },
            "auditing_firm_id": firms.get(r["auditing_firm"]),
            "withdrawn_on": r.get("withdrawn_on"),
        }
        for r in rows
    ]
    ids = _bulk(session, Certificate, plain)
    _link(
        session,
        certificate_facility,
        [
            {"certificate_id": i, "facility_id": f}
            for i, r in zip(ids, rows, strict=True)
            for f in set(r["facility_ids"])
        ],
    )
    _link(
        session,
        certificate_external,
        [
            {"certificate_id": i, "external_certification_id": codes[c]}
            for i, r in zip(ids, rows, strict=True)
            for c in set(r["external_certifications"])
        ],
    )


def _write_members(session: Session, rows: list[dict]) -> None:
    session.execute(insert(Member), [{"left_on": None, **r} for r in rows])


def _write_case_studies(session: Session, rows: list[dict]) -> None:
    session.execute(insert(CaseStudy), [{"member_id": None, "link": None, **r} for r in rows])


MODELS: dict[str, Any] = {
    "members": Member,
    "facilities": Facility,
    "auditing_firms": AuditingFirm,
    "certificates": Certificate,
    "trainings": Training,
    "meetings": Meeting,
    "case_studies": CaseStudy,
}


def recent_records(session: Session, *, kind: str, limit: int = 100) -> tuple[list[str], list]:
    """Return the column names and the newest rows of a kind's table."""
    table = MODELS[kind].__table__
    columns = [c for c in table.columns if c.name != "created_at"]
    rows = session.execute(select(*columns).order_by(table.c.id.desc()).limit(limit)).all()
    return [c.name for c in columns], rows


WRITERS: dict[str, Callable[[Session, list[dict]], None]] = {
    "members": _write_members,
    "facilities": _write_plain(Facility),
    "auditing_firms": _write_firms,
    "certificates": _write_certificates,
    "trainings": _write_plain(Training),
    "meetings": _write_plain(Meeting),
    "case_studies": _write_case_studies,
}
