"""Staff edit one programme record, checked as an import row is; the audit log keeps the change."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.changes import record_change
from collector.imports import ImportError_, validate_rows
from collector.kinds import RecordKind, check_rows, record_values, text, update_values
from outcomes.config import Settings
from outcomes.models import ExternalCertification, User
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
    settings: Settings,
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
    _record(session, settings, staff, found, before, "saved")
    return found


def retire_external_certification(
    session: Session, settings: Settings, found: ExternalCertification, *, staff: User, on: date
) -> None:
    """End a scheme's recognition on a day (an earlier end stays as it is)."""
    before = _certification_text(found)
    if found.valid_until is None or found.valid_until > on:
        found.valid_until = max(on, found.valid_from)
    _record(session, settings, staff, found, before, "retired")


def _certification_text(found: ExternalCertification) -> dict[str, str]:
    return {c: text(getattr(found, c)) for c in ("code", "name", "valid_from", "valid_until")}


def _record(
    session: Session,
    settings: Settings,
    staff: User,
    found: ExternalCertification,
    before: dict[str, str],
    verb: str,
) -> None:
    """Record a scheme's change: what the certificates leverage, and so the figures, changes."""
    after = _certification_text(found)
    changed = [c for c in after if before.get(c) != after[c]]
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
        },
        topic="aggregate",
        reason=f"external certification {found.code} {verb}",
    )
