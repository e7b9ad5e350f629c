"""Staff edit one programme record, checked as an import row is; the audit log keeps the change."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from collector.imports import MODELS, ImportError_, ImportKind, check_rows, validate_rows
from outcomes.config import Settings
from outcomes.models import (
    AuditingFirm,
    AuditLog,
    Certificate,
    ExternalCertification,
    User,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)
from outcomes.queue import enqueue, request_aggregation
from outcomes.schemas import Strict

# The columns a record keeps in link tables rather than in its own row.
LINKED = {"countries", "auditing_firm", "facility_ids", "external_certifications"}


UNCHANGED = "Nothing was changed: correct the fields named below."


def record_values(session: Session, kind: ImportKind, record_id: int) -> dict[str, str] | None:
    """Return a record as the text of its CSV row (the form shows it so), or None if unknown."""
    model = MODELS[kind.name]
    record = session.get(model, record_id)
    if record is None:
        return None
    values = {c: _text(getattr(record, c)) for c in kind.columns if c not in LINKED}
    if kind.name == "auditing_firms":
        countries = session.scalars(
            select(auditing_firm_country.c.country)
            .where(auditing_firm_country.c.firm_id == record_id)
            .order_by(auditing_firm_country.c.country)
        )
        values["countries"] = ";".join(countries)
    if kind.name == "certificates":
        firm = (
            session.get(AuditingFirm, record.auditing_firm_id) if record.auditing_firm_id else None
        )
        values["auditing_firm"] = firm.name if firm else ""
        facilities = session.scalars(
            select(certificate_facility.c.facility_id)
            .where(certificate_facility.c.certificate_id == record_id)
            .order_by(certificate_facility.c.facility_id)
        )
        values["facility_ids"] = ";".join(map(str, facilities))
        codes = session.scalars(
            select(ExternalCertification.code)
            .join(
                certificate_external,
                certificate_external.c.external_certification_id == ExternalCertification.id,
            )
            .where(certificate_external.c.certificate_id == record_id)
            .order_by(ExternalCertification.code)
        )
        values["external_certifications"] = ";".join(codes)
    return {c: values[c] for c in kind.columns}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def update_record(
    session: Session,
    settings: Settings,
    *,
    kind: ImportKind,
    record_id: int,
    raw: dict[str, Any],
    staff: User,
) -> dict[str, str]:
    """Replace a record's values (its whole CSV row) or raise ImportError_ (errors by field).

    Returns the new values; the audit log keeps the fields that changed, before and after.
    """
    before = record_values(session, kind, record_id)
    if before is None:
        raise LookupError(record_id)
    try:
        row = validate_rows(kind, [raw], {})[0]
    except ImportError_ as error:
        raise ImportError_(UNCHANGED, error.errors["rows"]["2"]) from None
    problems = check_rows(session, kind, [row], editing=record_id)
    if problems:
        raise ImportError_(UNCHANGED, problems[0])
    if kind.name == "facilities" and str(row["member_id"]) != before["member_id"]:
        _refuse_moving_a_covered_facility(session, record_id)
    model = MODELS[kind.name]
    plain = {k: v for k, v in row.items() if k not in LINKED}
    if kind.name == "certificates":
        plain["auditing_firm_id"] = (
            session.scalar(select(AuditingFirm.id).where(AuditingFirm.name == row["auditing_firm"]))
            if row["auditing_firm"]
            else None
        )
    session.execute(update(model).where(model.id == record_id).values(**plain))
    _replace_links(session, kind, record_id, row)
    after = record_values(session, kind, record_id) or {}
    changed = [c for c in kind.columns if before[c] != after[c]]
    outbox = request_aggregation(
        session, reason=f"edit {kind.name} {record_id}", requested_by=staff.id
    )
    session.add(
        AuditLog(
            actor_id=staff.id,
            action="record.update",
            object_type=kind.name,
            object_id=str(record_id),
            details={
                "before": {c: before[c] for c in changed},
                "after": {c: after[c] for c in changed},
            },
        )
    )
    session.commit()
    enqueue(settings, outbox)
    return after


def _refuse_moving_a_covered_facility(session: Session, facility_id: int) -> None:
    """A certificate covers only its holder's facilities: such a facility keeps its member."""
    numbers = session.scalars(
        select(Certificate.number)
        .join(certificate_facility, certificate_facility.c.certificate_id == Certificate.id)
        .where(certificate_facility.c.facility_id == facility_id)
        .order_by(Certificate.number)
    ).all()
    if numbers:
        raise ImportError_(
            UNCHANGED,
            {
                "member_id": [
                    f"Certificates {', '.join(numbers)} cover this facility; edit them first "
                    "so that it can change member."
                ]
            },
        )


def _replace_links(session: Session, kind: ImportKind, record_id: int, row: dict) -> None:
    """Replace the link rows of a firm (countries) or a certificate (facilities, schemes)."""
    if kind.name == "auditing_firms":
        table = auditing_firm_country
        session.execute(delete(table).where(table.c.firm_id == record_id))
        _insert(
            table, session, [{"firm_id": record_id, "country": c} for c in set(row["countries"])]
        )
    if kind.name == "certificates":
        for table in (certificate_facility, certificate_external):
            session.execute(delete(table).where(table.c.certificate_id == record_id))
        _insert(
            certificate_facility,
            session,
            [{"certificate_id": record_id, "facility_id": f} for f in set(row["facility_ids"])],
        )
        codes = dict(
            session.execute(
                select(ExternalCertification.code, ExternalCertification.id).where(
                    ExternalCertification.code.in_(row["external_certifications"])
                )
            ).all()
        )
        _insert(
            certificate_external,
            session,
            [
                {"certificate_id": record_id, "external_certification_id": codes[c]}
                for c in set(row["external_certifications"])
            ],
        )


def _insert(table: Any, session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert(table), rows)


class ExternalCertificationSchema(Strict):
    """A recognised external scheme; certificates leverage it while it is valid."""

    code = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=40),
            validate.Regexp(
                r"^[A-Za-z0-9._-]+$",
                error="Use letters, digits, '.', '_' or '-' (e.g. ISO14001): CSV files list "
                "codes separated by ';'.",
            ),
        ],
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(load_default=None, allow_none=True)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        until, start = data.get("valid_until"), data.get("valid_from")
        if until and start and until < start:
            raise ValidationError(
                f"valid_until ({until}) comes before valid_from ({start}).", "valid_until"
            )


def save_external_certification(
    session: Session,
    data: dict[str, Any],
    *,
    staff: User,
    found: ExternalCertification | None = None,
) -> ExternalCertification:
    """Add a recognised scheme, or change an existing one's name and validity (not its code).

    Raises ValidationError naming each bad field; the audit log keeps what changed.
    """
    schema = ExternalCertificationSchema(exclude=("code",) if found else ())
    loaded = schema.load(data)
    if found is None:
        taken = session.scalar(
            select(ExternalCertification.id).where(ExternalCertification.code == loaded["code"])
        )
        if taken is not None:
            raise ValidationError({"code": [f"{loaded['code']} is already on the list."]})
        found = ExternalCertification(**loaded)
        session.add(found)
        before: dict[str, str] = {}
    else:
        before = _certification_text(found)
        for column, value in loaded.items():
            setattr(found, column, value)
    session.flush()
    _log_certification(session, staff, found, before)
    return found


def retire_external_certification(
    session: Session, found: ExternalCertification, *, staff: User, on: date
) -> None:
    """End a scheme's recognition on a day (an earlier end stays as it is)."""
    before = _certification_text(found)
    if found.valid_until is None or found.valid_until > on:
        found.valid_until = max(on, found.valid_from)
    _log_certification(session, staff, found, before)


def _certification_text(found: ExternalCertification) -> dict[str, str]:
    return {c: _text(getattr(found, c)) for c in ("code", "name", "valid_from", "valid_until")}


def _log_certification(
    session: Session, staff: User, found: ExternalCertification, before: dict[str, str]
) -> None:
    after = _certification_text(found)
    changed = [c for c in after if before.get(c) != after[c]]
    session.add(
        AuditLog(
            actor_id=staff.id,
            action="external_certification.update" if before else "external_certification.create",
            object_type="external_certification",
            object_id=str(found.id),
            details={
                "before": {c: before[c] for c in changed if c in before},
                "after": {c: after[c] for c in changed},
            },
        )
    )
