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
from sqlalchemy import String, Table, cast, delete, func, insert, or_, select, update
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
    SurveyAnswer,
    SurveyResponse,
    SurveyRevision,
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


# A spreadsheet writes dates its own way (31/01/2026): name the one format we read.
DATE_ERROR = "Not a valid date: write it as YYYY-MM-DD, e.g. 2026-01-31."


def date_field(*, required: bool = True, **options: Any) -> fields.Date:
    """Return an ISO date field whose error names the expected format."""
    invalid = {"invalid": DATE_ERROR}
    if required:
        return fields.Date(required=True, error_messages=invalid, **options)
    return fields.Date(load_default=None, allow_none=True, error_messages=invalid)


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


class Key(fields.Field):
    """A cell naming another record by its id, code or name (a JSON body may send a number)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = str(value).strip() if isinstance(value, str | int) else ""
        if not 0 < len(text) <= 200:
            raise ValidationError("Give an id, a code or a name of at most 200 characters.")
        return text


def _code() -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))


class MemberRow(Row):
    code = _code()
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    membership_class = fields.String(required=True, validate=validate.OneOf(MEMBERSHIP_CLASSES))
    country = Country(required=True)
    joined_on = date_field()
    left_on = date_field(required=False)
    _order = _ordered("joined_on", "left_on", "left_on")


class FacilityRow(Row):
    code = _code()
    member_id = Key(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = Country(required=True)
    people = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))


class AuditingFirmRow(Row):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    accredited_on = date_field()
    accreditation_ends_on = date_field(required=False)
    countries = ListOf(_countries, required=True)
    _order = _ordered("accredited_on", "accreditation_ends_on", "accreditation_ends_on")


class CertificateRow(Row):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    member_id = Key(required=True)
    standard = fields.String(required=True, validate=validate.OneOf(STANDARDS))
    kind = fields.String(required=True, validate=validate.OneOf(CERTIFICATE_KINDS))
    audit_type = fields.String(required=True, validate=validate.Length(min=1, max=40))
    issued_on = date_field()
    expires_on = date_field()
    withdrawn_on = date_field(required=False)
    auditing_firm = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )
    facility_ids = ListOf(load_default=list)
    external_certifications = ListOf(load_default=list)
    _order = _ordered("issued_on", "expires_on", "expires_on")
    _withdrawn = _ordered("issued_on", "withdrawn_on", "withdrawn_on")


class TrainingRow(Row):
    person_key = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.String(required=True, validate=validate.OneOf(TRAINING_ROLES))
    course = fields.String(required=True, validate=validate.Length(min=1, max=200))
    completed_on = date_field()


class MeetingRow(Row):
    body = fields.String(required=True, validate=validate.OneOf(MEETING_BODIES))
    held_on = date_field()


class CaseStudyRow(Row):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    member_id = Key(load_default=None, allow_none=True)
    country = Country(required=True)
    summary = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    # Shown as a link on the dashboard: web addresses only (never javascript:, data: or ftp:).
    link = fields.Url(
        load_default=None,
        allow_none=True,
        schemes={"http", "https"},
        validate=validate.Length(max=2000),
    )


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
    counts = Counter(row[column] for row in rows if row.get(column) is not None)
    if not counts:  # an optional column left blank in every row
        return {}
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
        if row.get(column) is not None and (row[column] in taken or counts[row[column]] > 1)
    }


def merge_problems(*reports: dict[int, dict[str, list[str]]]) -> dict[int, dict[str, list[str]]]:
    merged: dict[int, dict[str, list[str]]] = {}
    for report in reports:
        for index, errors in report.items():
            for column, messages in errors.items():
                merged.setdefault(index, {}).setdefault(column, []).extend(messages)
    return merged


def _check_firm_names(session: Session, rows: list[dict], editing: int | None) -> Problems:
    return _taken(
        session, rows, "name", AuditingFirm.name, AuditingFirm.id, editing, "Auditing firm"
    )


def _check_member_codes(session: Session, rows: list[dict], editing: int | None) -> Problems:
    return _taken(session, rows, "code", Member.code, Member.id, editing, "Member code")


def _check_facility_codes(session: Session, rows: list[dict], editing: int | None) -> Problems:
    return _taken(session, rows, "code", Facility.code, Facility.id, editing, "Facility code")


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


def _check_facility_keeps_member(
    session: Session, rows: list[dict], editing: int | None
) -> Problems:
    """A facility keeps its member while certificates cover it or survey answers are about it."""
    if editing is None or not rows:
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
    # A per-facility repeat's answers count for the member that gave them: moved, the facility
    # would count for two members in those years.
    years = session.scalars(
        select(SurveyResponse.year)
        .join(SurveyRevision, SurveyRevision.response_id == SurveyResponse.id)
        .join(SurveyAnswer, SurveyAnswer.revision_id == SurveyRevision.id)
        .where(SurveyAnswer.facility_id == editing)
        .distinct()
        .order_by(SurveyResponse.year)
    ).all()
    problems = []
    if numbers:
        problems.append(
            f"Certificates {', '.join(numbers)} cover this facility; edit them first "
            "so that it can change member."
        )
    if years:
        problems.append(
            f"The member's survey answers for {', '.join(map(str, years))} are about this "
            "facility; record the new member's site as a new facility instead."
        )
    return {0: {"member_id": problems}} if problems else {}


@dataclass(frozen=True)
class Lookup:
    """How a cell names another kind of record: by a unique key (a code, a name), or its id."""

    label: str  # "member", in messages: "No member with code or name 'X'."
    id: Any  # the other record's id column
    keys: tuple[Any, ...]  # the columns that name it, tried in order (code, then name)
    shown: Any  # what lists show for it (a name), and a CSV cell too unless by_id
    by_id: bool = False  # a cell of digits may give the id (files written before codes)

    def resolve(self, session: Session, cells: set[str]) -> tuple[dict[str, int], dict[str, str]]:
        """Map each cell to one id (one query per key); return the ids and a problem per cell."""
        found: dict[str, set[int]] = {}
        if self.by_id:
            numbers = {int(c) for c in cells if c.isdigit() and len(c) < 10}
            if numbers:
                for number in session.scalars(select(self.id).where(self.id.in_(numbers))):
                    found[str(number)] = {number}
        for key in self.keys:
            rest = [c for c in cells if c not in found]
            if rest:
                for name, number in session.execute(select(key, self.id).where(key.in_(rest))):
                    found.setdefault(name, set()).add(number)
        ids, problems = {}, {}
        words = " or ".join(k.key for k in self.keys)
        for cell in cells:
            match = found.get(cell, set())
            if len(match) == 1:
                ids[cell] = next(iter(match))
            elif match:
                problems[cell] = f"{len(match)} {self.label}s are named {cell!r}: give the code."
            elif self.by_id and cell.isdigit():
                problems[cell] = f"No {self.label} with id {cell}."
            else:
                problems[cell] = f"No {self.label} with {words} {cell!r}."
        return ids, problems


MEMBER = Lookup("member", Member.id, (Member.code, Member.name), Member.name, by_id=True)
FACILITY = Lookup("facility", Facility.id, (Facility.code,), Facility.name, by_id=True)
FIRM = Lookup("auditing firm", AuditingFirm.id, (AuditingFirm.name,), AuditingFirm.name)
SCHEME = Lookup(
    "external certification",
    ExternalCertification.id,
    (ExternalCertification.code,),
    ExternalCertification.code,
)


@dataclass(frozen=True)
class Reference:
    """A column naming one other record, stored as that record's id."""

    column: str  # the CSV column, e.g. "auditing_firm"
    stored: str  # the model's column, e.g. "auditing_firm_id"
    lookup: Lookup

    def shown(self, model: Any) -> Any:
        """Return the expression of the other record's name beside a row of `model`."""
        lookup = self.lookup
        return (
            select(lookup.shown)
            .where(lookup.id == model.__table__.c[self.stored])
            .scalar_subquery()
        )


@dataclass(frozen=True)
class Link:
    """A column holding several values (separated by ';'), kept as rows of a link table."""

    column: str  # the CSV column, e.g. "facility_ids"
    table: Table
    owner: str  # the link table's column naming the record
    value: str  # the link table's column holding one value
    lookup: Lookup | None = None  # for values naming other records (stored as their ids)

    def read(self, owners: list[int], *, cell: bool) -> Any:
        """Return (owner, value) rows of records in value order: as in a CSV cell, or named."""
        owner, value = self.table.c[self.owner], self.table.c[self.value]
        lookup = self.lookup
        if lookup is None or (cell and lookup.by_id):
            return select(owner, value).where(owner.in_(owners)).order_by(value)
        return (
            select(owner, lookup.shown)
            .join(self.table, value == lookup.id)
            .where(owner.in_(owners))
            .order_by(lookup.shown)
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
    def required_columns(self) -> list[str]:
        """Return the columns every row must fill (a header must name them)."""
        return [name for name, field in self.schema().fields.items() if field.required]

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


# The example rows import on the demo data (`outcomes load-demo`), so a new installation can try
# each template as it is; related records are named by code or name, as ASI's registers do.
KINDS: dict[str, RecordKind] = {
    kind.name: kind
    for kind in (
        RecordKind(
            "members",
            Member,
            MemberRow,
            {
                "code": "M-BAUX",
                "name": "Bauxite Co",
                "membership_class": "Civil Society",
                "country": "GH",
                "joined_on": "2021-03-01",
                "left_on": "",
            },
            checks=(_check_member_codes,),
        ),
        RecordKind(
            "facilities",
            Facility,
            FacilityRow,
            {
                "code": "F-MINE-A",
                "member_id": "M-0001",
                "name": "Mine A",
                "country": "GH",
                "people": "420",
            },
            references=(Reference("member_id", "member_id", MEMBER),),
            checks=(_check_facility_codes, _check_facility_keeps_member),
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
                "member_id": "M-0001",
                "standard": "PS",
                "kind": "full",
                "audit_type": "initial",
                "issued_on": "2022-05-01",
                "expires_on": "2025-05-01",
                "withdrawn_on": "",
                "auditing_firm": "Demo Audit Partners 01",
                "facility_ids": "F-0001",
                "external_certifications": "ISO14001",
            },
            references=(
                Reference("member_id", "member_id", MEMBER),
                Reference("auditing_firm", "auditing_firm_id", FIRM),
            ),
            links=(
                Link(
                    "facility_ids", certificate_facility, "certificate_id", "facility_id", FACILITY
                ),
                Link(
                    "external_certifications",
                    certificate_external,
                    "certificate_id",
                    "external_certification_id",
                    SCHEME,
                ),
            ),
            checks=(_check_certificate_numbers, _check_holder_facilities),
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
                "member_id": "M-0001",
                "country": "GH",
                "summary": "How a mine cut its water use.",
                "link": "https://example.org/story",
            },
            references=(Reference("member_id", "member_id", MEMBER),),
        ),
    )
}


def check_rows(
    session: Session, kind: RecordKind, rows: list[dict], *, editing: int | None = None
) -> Problems:
    """Resolve the rows' references to ids (in place) and return what the schema cannot see.

    The kind's checks (duplicates bar `editing`, facilities of the holder) read only the rows
    whose references all resolved, so one wrong name gives one message.
    """
    problems = _resolve(session, kind, rows)
    good = [i for i in range(len(rows)) if i not in problems]
    subset = [rows[i] for i in good]
    for check in kind.checks:
        found = check(session, subset, editing)
        problems = merge_problems(problems, {good[j]: errors for j, errors in found.items()})
    return problems


def _resolve(session: Session, kind: RecordKind, rows: list[dict]) -> Problems:
    """Replace the cells naming other records by their ids; report the names that name none."""
    problems: Problems = {}
    for reference in kind.references:
        column = reference.column
        cells = {row[column] for row in rows if row.get(column) is not None}
        ids, unknown = reference.lookup.resolve(session, cells) if cells else ({}, {})
        for i, row in enumerate(rows):
            cell = row.get(column)
            if cell in unknown:
                problems.setdefault(i, {})[column] = [unknown[cell]]
            elif cell is not None:
                row[column] = ids[cell]
    for link in kind.links:
        if link.lookup is None:
            continue
        column = link.column
        cells = {cell for row in rows for cell in row[column]}
        ids, unknown = link.lookup.resolve(session, cells) if cells else ({}, {})
        for i, row in enumerate(rows):
            wrong = [unknown[cell] for cell in row[column] if cell in unknown]
            if wrong:
                problems.setdefault(i, {})[column] = wrong
            else:
                row[column] = [ids[cell] for cell in row[column]]
    return problems


def insert_records(session: Session, kind: RecordKind, rows: list[dict]) -> list[int]:
    """Insert checked rows with their link rows; return their ids in row order."""
    model = kind.model
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    ids = list(session.scalars(statement, [_stored(kind, row) for row in rows]))
    _add_links(session, kind, ids, rows)
    return ids


def update_values(session: Session, kind: RecordKind, record_id: int, row: dict) -> None:
    """Replace a record's values and link rows with a checked row's."""
    model = kind.model
    session.execute(update(model).where(model.id == record_id).values(**_stored(kind, row)))
    for link in kind.links:
        session.execute(delete(link.table).where(link.table.c[link.owner] == record_id))
    _add_links(session, kind, [record_id], [row])


def _stored(kind: RecordKind, row: dict) -> dict[str, Any]:
    """Return a checked row's values in the kind's own table (references as ids)."""
    # Every row names every column, so the rows go out as one multi-row INSERT.
    return {
        **{c: row.get(c) for c in kind.plain_columns},
        **{r.stored: row.get(r.column) for r in kind.references},
    }


def _add_links(session: Session, kind: RecordKind, ids: list[int], rows: list[dict]) -> None:
    """Insert the link rows of records (ids) from their checked rows, each value once."""
    for link in kind.links:
        pairs = [
            {link.owner: i, link.value: value}
            for i, row in zip(ids, rows, strict=True)
            for value in set(row[link.column])
        ]
        if pairs:
            session.execute(insert(link.table), pairs)


def record_values(session: Session, kind: RecordKind, record_id: int) -> dict[str, str] | None:
    """Return a record as the text of its CSV row (the form shows it so), or None if unknown."""
    record = session.get(kind.model, record_id)
    if record is None:
        return None
    values = {c: text(getattr(record, c)) for c in kind.plain_columns}
    for reference in kind.references:
        stored = getattr(record, reference.stored)
        lookup = reference.lookup
        if lookup.by_id or stored is None:
            values[reference.column] = text(stored)
        else:
            values[reference.column] = text(
                session.scalar(select(lookup.shown).where(lookup.id == stored))
            )
    values.update(_link_cells(session, kind, [record_id], cell=True).get(record_id, {}))
    return {c: values.get(c, "") for c in kind.columns}


def _link_cells(
    session: Session, kind: RecordKind, ids: list[int], *, cell: bool
) -> dict[int, dict[str, str]]:
    """Return each record's link columns as ';'-separated text (one query per link)."""
    cells: dict[int, dict[str, list[str]]] = {i: {} for i in ids}
    for link in kind.links:
        for owner, value in session.execute(link.read(ids, cell=cell)):
            cells[owner].setdefault(link.column, []).append(text(value))
    return {i: {c: ";".join(v) for c, v in columns.items()} for i, columns in cells.items()}


def text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


PER_PAGE = 50


class ListQuerySchema(Schema):
    """How to search, sort and page a list of records."""

    q = fields.String(
        load_default="",
        validate=validate.Length(max=200),
        metadata={"description": "Text to find in any column or related name (any case)."},
    )
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=100_000),
        metadata={"description": f"Page number; {PER_PAGE} records a page."},
    )
    sort = fields.String(
        load_default="-id",
        validate=validate.Length(min=1, max=60),
        metadata={"description": "A column (or id) to sort by; a leading - reverses it."},
    )


@dataclass(frozen=True)
class RecordPage:
    """One page of a kind's records, as staff read them (names, not ids)."""

    total: int
    page: int
    per_page: int
    sort: str
    records: list[dict[str, Any]]  # {"id": 7, "values": {column: text}}

    @property
    def pages(self) -> int:
        """Return how many pages the records fill (at least one)."""
        return max(1, -(-self.total // self.per_page))


def sort_keys(kind: RecordKind) -> list[str]:
    """Return what a kind's list may be sorted by ("-" before one reverses it)."""
    linked = {link.column for link in kind.links}
    return ["id", *(c for c in kind.columns if c not in linked)]


def list_records(
    session: Session,
    kind: RecordKind,
    *,
    q: str = "",
    page: int = 1,
    sort: str = "-id",
    per_page: int = PER_PAGE,
) -> RecordPage:
    """Return one page of records whose text or related names contain q, sorted by a column."""
    model = kind.model
    table = model.__table__
    shown = {c: table.c[c] for c in kind.plain_columns}
    shown |= {r.column: r.shown(model).label(r.column) for r in kind.references}
    key = sort.removeprefix("-")
    if key not in sort_keys(kind):
        raise ValueError(f"Sort by one of: {', '.join(sort_keys(kind))} (a leading - reverses).")
    order = table.c.id if key == "id" else shown[key]
    where = []
    if q:
        where.append(
            or_(
                *(
                    func.lower(cast(column, String)).contains(q.lower(), autoescape=True)
                    for column in shown.values()
                )
            )
        )
    total = session.scalar(select(func.count()).select_from(table).where(*where)) or 0
    direction = order.desc() if sort.startswith("-") else order.asc()
    query = (
        select(table.c.id, *shown.values())
        .where(*where)
        .order_by(direction, table.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = session.execute(query).all()
    links = _link_cells(session, kind, [row.id for row in rows], cell=False)
    records = [
        {
            "id": row.id,
            "values": {
                c: links[row.id].get(c, "") if c not in shown else text(row._mapping[c])
                for c in kind.columns
            },
        }
        for row in rows
    ]
    return RecordPage(total, page, per_page, sort, records)
