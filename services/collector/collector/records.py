"""Staff edit one programme record, checked as an import row is; the audit log keeps the change."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import case, distinct, func, or_, select
from sqlalchemy.orm import Session

from collector.changes import record_change
from collector.imports import ImportError_, validate_rows
from collector.kinds import RecordKind, check_rows, date_field, record_values, text, update_values
from outcomes.config import Settings
from outcomes.models import Certificate, ExternalCertification, User, certificate_external
from outcomes.schemas import Strict

UNCHANGED = "Nothing was changed: correct the fields named below."


def update_record(
    session: Session,
    settings: Settings,
    *,
    kind: RecordKind,
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
    update_values(session, kind, record_id, row)
    after = record_values(session, kind, record_id) or {}
    changed = [c for c in kind.columns if before[c] != after[c]]
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="record.update",
        object_type=kind.name,
        object_id=record_id,
        details={
            "before": {c: before[c] for c in changed},
            "after": {c: after[c] for c in changed},
        },
        topic="aggregate",
        reason=f"edit {kind.name} {record_id}",
    )
    return after


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
    valid_from = date_field()
    valid_until = date_field(required=False)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        until, start = data.get("valid_until"), data.get("valid_from")
        if until and start and until < start:
            raise ValidationError(
                f"valid_until ({until}) comes before valid_from ({start}).", "valid_until"
            )


def save_external_certification(
    session: Session,
    settings: Settings,
    data: dict[str, Any],
    *,
    staff: User,
    found: ExternalCertification | None = None,
) -> tuple[ExternalCertification, list[str]]:
    """Add a recognised scheme, or change an existing one's name and validity (not its code).

    Returns the scheme and data-quality warnings; raises ValidationError naming each bad field;
    the audit log keeps what changed.
    """
    schema = ExternalCertificationSchema(exclude=("code",) if found else ())
    loaded = schema.load(data)
    if found is None:
        taken = session.scalar(
            select(ExternalCertification.id).where(ExternalCertification.code == loaded["code"])
        )
        if taken is not None:
            raise ValidationError({"code": [f"{loaded['code']} is already on the list."]})
        leveraged = leverage(session, loaded["code"])
        found = ExternalCertification(**loaded)
        session.add(found)
        before: dict[str, str] = {}
    else:
        leveraged = leverage(session, found.code)
        before = _certification_text(found)
        for column, value in loaded.items():
            setattr(found, column, value)
    session.flush()
    return found, _record(session, settings, staff, found, before, leveraged, "saved")


def retire_external_certification(
    session: Session, settings: Settings, found: ExternalCertification, *, staff: User, on: date
) -> list[str]:
    """End a scheme's recognition on a day (an earlier end stays as it is); return warnings."""
    leveraged = leverage(session, found.code)
    before = _certification_text(found)
    if found.valid_until is None or found.valid_until > on:
        found.valid_until = max(on, found.valid_from)
    return _record(session, settings, staff, found, before, leveraged, "retired")


def leverage(session: Session, code: str) -> tuple[int, int]:
    """Count PS certificates issued by today that leverage any scheme, and the scheme `code`.

    The rule is the published leverage figure's (outcomes.indicator_sql): a certificate
    leverages a scheme it names if the scheme was recognised on the day it was issued.
    """
    c, e = Certificate.__table__.c, ExternalCertification.__table__.c
    query = (
        select(
            func.count(distinct(c.id)),
            func.count(distinct(case((e.code == code, c.id)))),
        )
        .select_from(
            Certificate.__table__.join(
                certificate_external, certificate_external.c.certificate_id == c.id
            ).join(
                ExternalCertification.__table__,
                e.id == certificate_external.c.external_certification_id,
            )
        )
        .where(
            c.standard == "PS",
            c.issued_on <= date.today(),
            e.valid_from <= c.issued_on,
            or_(e.valid_until.is_(None), e.valid_until >= c.issued_on),
        )
    )
    counted = session.execute(query).one()
    return counted[0], counted[1]


def leverage_warnings(code: str, before: tuple[int, int], after: tuple[int, int]) -> list[str]:
    """Name a published figure a change to a scheme turns to zero."""
    warnings = []
    if before[1] and not after[1]:
        warnings.append(
            f"Data quality: none of the {before[1]} certificates that leveraged {code} does now, "
            f"so its published share becomes 0.0 %. A certificate leverages a scheme only if it "
            "was issued between the scheme's 'valid from' and 'valid until' dates."
        )
    if before[0] and not after[0]:
        warnings.append(
            "Data quality: no PS certificate leverages a recognised external certification now, "
            "so the published leverage figure becomes 0.0 %."
        )
    return warnings


def _certification_text(found: ExternalCertification) -> dict[str, str]:
    return {c: text(getattr(found, c)) for c in ("code", "name", "valid_from", "valid_until")}


def _record(
    session: Session,
    settings: Settings,
    staff: User,
    found: ExternalCertification,
    before: dict[str, str],
    leveraged: tuple[int, int],
    verb: str,
) -> list[str]:
    """Record a scheme's change (what certificates leverage changes); return its warnings."""
    after = _certification_text(found)
    changed = [c for c in after if before.get(c) != after[c]]
    warnings = leverage_warnings(found.code, leveraged, leverage(session, found.code))
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="external_certification.update" if before else "external_certification.create",
        object_type="external_certification",
        object_id=found.id,
        details={
            "before": {c: before[c] for c in changed if c in before},
            "after": {c: after[c] for c in changed},
            **({"warnings": warnings} if warnings else {}),
        },
        topic="aggregate",
        reason=f"external certification {found.code} {verb}",
    )
    return warnings
