"""The audit log, filtered."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import render_template, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from collector.context import db
from collector.web.session import login_required
from collector.web.staff.common import PAGE_SIZE, bp
from outcomes.models import AuditLog, User


class AuditFilterSchema(Schema):
    """The audit log's filters; a field left empty filters nothing."""

    action = fields.String(validate=validate.Length(max=200))
    object_type = fields.String(validate=validate.Length(max=200))
    actor = fields.String(validate=validate.Length(max=200))
    since = fields.Date(error_messages={"invalid": "Give a date such as 2026-01-31."})
    until = fields.Date(error_messages={"invalid": "Give a date such as 2026-01-31."})

    @validates_schema
    def dates_in_order(self, data: dict, **_kwargs: object) -> None:
        """Refuse a period that ends before it starts."""
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise ValidationError("'To' must not be before 'From'.", "until")


@bp.get("/audit")
@login_required("staff")
def audit() -> tuple[str, int]:
    """Show the audit log, filtered by action, object, person and dates."""
    names = ("action", "object_type", "actor", "since", "until")
    filters = {k: request.args.get(k, "").strip() for k in names}
    try:
        chosen = AuditFilterSchema().load({k: v for k, v in filters.items() if v})
    except ValidationError as invalid:
        errors = invalid.normalized_messages()
        return render_template("staff/audit.html", rows=[], filters=filters, errors=errors), 400
    query = (
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.actor_id)
        .order_by(AuditLog.id.desc())
    )
    if "action" in chosen:
        query = query.where(AuditLog.action.startswith(chosen["action"], autoescape=True))
    if "object_type" in chosen:
        query = query.where(AuditLog.object_type == chosen["object_type"])
    if "actor" in chosen:
        query = query.where(User.email.contains(chosen["actor"].lower(), autoescape=True))
    if "since" in chosen:
        query = query.where(AuditLog.at >= datetime.combine(chosen["since"], time.min, tzinfo=UTC))
    if "until" in chosen:
        query = query.where(AuditLog.at <= datetime.combine(chosen["until"], time.max, tzinfo=UTC))
    rows = list(db().execute(query.limit(PAGE_SIZE)))
    return render_template("staff/audit.html", rows=rows, filters=filters, errors={}), 200
