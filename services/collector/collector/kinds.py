"""The kinds of programme record: model, CSV schema, example row, references, links and checks.

Imports, the staff record pages and the record API are generic over this one table (KINDS).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import Column, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from outcomes.models import (
    CERTIFICATE_KINDS,
    MEETING_BODIES,
    MEMBERSHIP_CLASSES,
    STANDARDS,
    TRAINING_ROLES,
    AuditingFirm,
    CaseStudy,
    Certificate,
    ExternalCertification,
    Facility,
    Meeting,
    Member,
    Training,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)
from outcomes.schemas import Country, validate_country

# Problems by row index (0 = the first row given), then by column.
Problems = dict[int, dict[str, list[str]]]
# A check the schema cannot make (it reads the database): rows, the record being edited or None.
Check = Callable[[Session, list[dict], "int | None"], Problems]


class ListOf(fields.Field):
    """A cell holding several values separated by ';' (e.g. "DE;FR"), at most MOST of them."""

    MOST = 500

    def __init__(self, inner: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("validate", validate.Length(max=self.MOST))
        super().__init__(**kwargs)
        self.inner = inner

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list:
        # A JSON body may send a list; a CSV cell or a form field sends "a;b".
        parts = value if isinstance(value, list) else str(value or "").split(";", self.MOST)
        if len(parts) > self.MOST:
            raise ValidationError(f"Give at most {self.MOST} values.")
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
    auditing_firm = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )
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
    link = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        validate=validate.Length(max=2000),
    )


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


def merge_problems(*reports: dict[int, dict[str, list[str]]]) -> dict[int, dict[str, list[str]]]:
    merged: dict[int, dict[str, list[str]]] = {}
    for report in reports:
        for index, errors in report.items():
            for column, messages in errors.items():
                merged.setdefault(index, {}).setdefault(column, []).extend(messages)
    return merged


def _check_member_refs(session: Session, rows: list[dict], _editing: int | None) -> Problems:
    return _unknown(session, rows, "member_id", Member.id, "member with id")


def _check_firm_names(session: Session, rows: list[dict], editing: int | None) -> Problems:
    return _taken(
        session, rows, "name", AuditingFirm.name, AuditingFirm.id, editing, "Auditing firm"
    )


def _check_certificate_numbers(session: Session, rows: list[dict], editing: int | None) -> Problems:
    return _taken(
        session, rows, "number", Certificate.number, Certificate.id, editing, "Certificate number"
    )


def _check_holder_facilities(session: Session, rows: list[dict], _editing: int | None) -> Problems:
    """A certificate covers only facilities of its holder."""
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
    return {
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


def _check_scheme_codes(session: Session, rows: list[dict], _editing: int | None) -> Problems:
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
    return {
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


def _check_covered_facility_keeps_member(
    session: Session, rows: list[dict], editing: int | None
) -> Problems:
    """A certificate covers only its holder's facilities: such a facility keeps its member."""
    if editing is None:
        return {}
    stored = session.scalar(select(Facility.member_id).where(Facility.id == editing))
    if stored is None or stored == rows[0]["member_id"]:
        return {}
    numbers = session.scalars(
        select(Certificate.number)
        .join(certificate_facility, certificate_facility.c.certificate_id == Certificate.id)
        .where(certificate_facility.c.facility_id == editing)
        .order_by(Certificate.number)
    ).all()
    if not numbers:
        return {}
    return {
        0: {
            "member_id": [
                f"Certificates {', '.join(numbers)} cover this facility; edit them first "
                "so that it can change member."
            ]
        }
    }


@dataclass(frozen=True)
class Reference:
    """A column naming another record by a unique name, stored as that record's id."""

    column: str  # the CSV column, e.g. "auditing_firm"
    stored: str  # the model's column, e.g. "auditing_firm_id"
    key: Any  # the other record's name column, e.g. AuditingFirm.name
    id: Any  # the other record's id column
    label: str  # words for an unknown name: "No auditing firm named 'X'."


@dataclass(frozen=True)
class Link:
    """A column holding several values (separated by ';'), kept as rows of a link table."""

    column: str  # the CSV column, e.g. "facility_ids"
    table: Table
    owner: str  # the link table's column naming the record
    value: str  # the link table's column holding one value
    key: Any = None  # for values stored as ids: the other record's name column (e.g. a code)
    id: Any = None  # ... and its id column

    def read(self, record_id: int) -> Any:
        """Return the query of a record's values in order, as they appear in a CSV cell."""
        owner, value = self.table.c[self.owner], self.table.c[self.value]
        if self.key is None:
            return select(value).where(owner == record_id).order_by(value)
        return (
            select(self.key)
            .join(self.table, value == self.id)
            .where(owner == record_id)
            .order_by(self.key)
        )


@dataclass(frozen=True)
class RecordKind:
    """One kind of programme record, described once for imports, record pages and the API."""

    name: str
    model: Any
    schema: type[Row]
    example: dict[str, str]
    references: tuple[Reference, ...] = ()
    links: tuple[Link, ...] = ()
    checks: tuple[Check, ...] = ()

    @property
    def singular(self) -> str:
        """Name one record of the kind in words ("facility", "case study")."""
        words = self.name.replace("_", " ")
        return words[:-3] + "y" if words.endswith("ies") else words[:-1]

    @property
    def columns(self) -> list[str]:
        """Return the CSV columns, in template order."""
        return list(self.schema().fields)

    @property
    def plain_columns(self) -> list[str]:
        """Return the columns stored as they are in the record's own row."""
        elsewhere = {r.column for r in self.references} | {k.column for k in self.links}
        return [c for c in self.columns if c not in elsewhere]

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


KINDS: dict[str, RecordKind] = {
    kind.name: kind
    for kind in (
        RecordKind(
            "members",
            Member,
            MemberRow,
            {
                "name": "Bauxite Co",
                "membership_class": "Civil Society",
                "country": "GH",
                "joined_on": "2021-03-01",
                "left_on": "",
            },
        ),
        RecordKind(
            "facilities",
            Facility,
            FacilityRow,
            {"member_id": "1", "name": "Mine A", "country": "GH", "people": "420"},
            checks=(_check_member_refs, _check_covered_facility_keeps_member),
        ),
        RecordKind(
            "auditing_firms",
            AuditingFirm,
            AuditingFirmRow,
            {
                "name": "Audit AG",
                "accredited_on": "2019-01-01",
                "accreditation_ends_on": "",
                "countries": "DE;FR",
            },
            links=(Link("countries", auditing_firm_country, "firm_id", "country"),),
            checks=(_check_firm_names,),
        ),
        RecordKind(
            "certificates",
            Certificate,
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
            references=(
                Reference(
                    "auditing_firm",
                    "auditing_firm_id",
                    AuditingFirm.name,
                    AuditingFirm.id,
                    "auditing firm named",
                ),
            ),
            links=(
                Link("facility_ids", certificate_facility, "certificate_id", "facility_id"),
                Link(
                    "external_certifications",
                    certificate_external,
                    "certificate_id",
                    "external_certification_id",
                    ExternalCertification.code,
                    ExternalCertification.id,
                ),
            ),
            checks=(
                _check_certificate_numbers,
                _check_member_refs,
                _check_holder_facilities,
                _check_scheme_codes,
            ),
        ),
        RecordKind(
            "trainings",
            Training,
            TrainingRow,
            {
                "person_key": "p-7f3a",
                "role": "auditor",
                "course": "PS auditor course",
                "completed_on": "2023-06-30",
            },
        ),
        RecordKind("meetings", Meeting, MeetingRow, {"body": "board", "held_on": "2024-02-15"}),
        RecordKind(
            "case_studies",
            CaseStudy,
            CaseStudyRow,
            {
                "title": "Water in Ghana",
                "member_id": "1",
                "country": "GH",
                "summary": "How a mine cut its water use.",
                "link": "https://example.org/story",
            },
            checks=(_check_member_refs,),
        ),
    )
}


def check_rows(
    session: Session, kind: RecordKind, rows: list[dict], *, editing: int | None = None
) -> Problems:
    """Return the rows' problems the schema cannot see: references, duplicates (bar `editing`)."""
    reports = [check(session, rows, editing) for check in kind.checks]
    reports += [_unknown(session, rows, r.column, r.key, r.label) for r in kind.references]
    return merge_problems(*reports)


def insert_records(session: Session, kind: RecordKind, rows: list[dict]) -> list[int]:
    """Insert loaded rows with their references and link rows; return their ids in row order."""
    stored = _stored(session, kind, rows)
    model = kind.model
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    ids = list(session.scalars(statement, stored))
    _add_links(session, kind, ids, rows)
    return ids


def update_values(session: Session, kind: RecordKind, record_id: int, row: dict) -> None:
    """Replace a record's values and link rows with a loaded row's."""
    model = kind.model
    session.execute(
        update(model).where(model.id == record_id).values(**_stored(session, kind, [row])[0])
    )
    for link in kind.links:
        session.execute(delete(link.table).where(link.table.c[link.owner] == record_id))
    _add_links(session, kind, [record_id], [row])


def record_values(session: Session, kind: RecordKind, record_id: int) -> dict[str, str] | None:
    """Return a record as the text of its CSV row (the form shows it so), or None if unknown."""
    record = session.get(kind.model, record_id)
    if record is None:
        return None
    values = {c: text(getattr(record, c)) for c in kind.plain_columns}
    for reference in kind.references:
        stored = getattr(record, reference.stored)
        name = session.scalar(select(reference.key).where(reference.id == stored)) if stored else ""
        values[reference.column] = name or ""
    for link in kind.links:
        values[link.column] = ";".join(map(str, session.scalars(link.read(record_id))))
    return {c: values[c] for c in kind.columns}


def text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def _stored(session: Session, kind: RecordKind, rows: list[dict]) -> list[dict[str, Any]]:
    """Return the values of the kind's own table: plain columns and references as ids."""
    ids = {
        r.column: _ids(session, r.key, r.id, {row.get(r.column) for row in rows})
        for r in kind.references
    }
    # Every row names every column, so the rows go out as one multi-row INSERT.
    return [
        {
            **{c: row.get(c) for c in kind.plain_columns},
            **{r.stored: ids[r.column].get(row.get(r.column)) for r in kind.references},
        }
        for row in rows
    ]


def _add_links(session: Session, kind: RecordKind, ids: list[int], rows: list[dict]) -> None:
    """Insert the link rows of records (ids) from their loaded rows, each value once."""
    for link in kind.links:
        values = {v for row in rows for v in row[link.column]}
        names = _ids(session, link.key, link.id, values) if link.key is not None else None
        pairs = [
            {link.owner: i, link.value: names[v] if names is not None else v}
            for i, row in zip(ids, rows, strict=True)
            for v in set(row[link.column])
        ]
        if pairs:
            session.execute(insert(link.table), pairs)


def _ids(session: Session, key: Column, id_: Column, names: set) -> dict[Any, int]:
    """Map names (or codes) to ids with one query."""
    names.discard(None)
    if not names:
        return {}
    return dict(session.execute(select(key, id_).where(key.in_(names))).all())


def recent_records(
    session: Session, kind: RecordKind, *, limit: int = 100
) -> tuple[list[str], list]:
    """Return the column names and the newest rows of a kind's table."""
    table = kind.model.__table__
    columns = [c for c in table.columns if c.name != "created_at"]
    rows = session.execute(select(*columns).order_by(table.c.id.desc()).limit(limit)).all()
    return [c.name for c in columns], rows
