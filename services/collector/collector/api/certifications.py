"""Staff keep the recognised external certification schemes certificates may leverage."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields
from sqlalchemy import select

from collector.api.common import BEARER, document_errors
from collector.auth import current_user, require
from collector.context import db, settings
from collector.records import (
    ExternalCertificationSchema,
    retire_external_certification,
    save_external_certification,
)
from outcomes.models import ExternalCertification

blp = Blueprint(
    "external_certifications", __name__, description="Recognised external certification schemes"
)


class CertificationRecordSchema(Schema):
    """A recognised scheme; certificates issued while it is valid leverage it."""

    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    valid_from = fields.Date()
    valid_until = fields.Date(allow_none=True)
    warnings = fields.List(
        fields.String(),
        metadata={"description": "Data-quality warnings, e.g. a published figure becoming 0."},
    )


class CertificationChangeSchema(ExternalCertificationSchema):
    """A scheme's new name and validity; its code stays."""

    class Meta:
        exclude = ("code",)


def _found(certification_id: int) -> ExternalCertification:
    found = db().get(ExternalCertification, certification_id)
    if found is None:
        abort(404, message=f"No external certification {certification_id}.")
    return found


def _save(data: dict[str, Any], found: ExternalCertification | None) -> dict[str, Any]:
    session = db()
    try:
        saved, warnings = save_external_certification(
            session, settings(), data, staff=current_user(), found=found
        )
    except ValidationError as invalid:
        session.rollback()
        abort(422, message="The scheme needs correcting.", errors={"json": invalid.messages})
    return _answer(saved, warnings)


def _answer(found: ExternalCertification, warnings: list[str]) -> dict[str, Any]:
    """Return a scheme with the warnings its change raised."""
    columns = ("id", "code", "name", "valid_from", "valid_until")
    return {**{c: getattr(found, c) for c in columns}, "warnings": warnings}


@blp.route("")
class Certifications(MethodView):
    """The list of recognised schemes."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, CertificationRecordSchema(many=True))
    @document_errors(blp, 401, 403)
    def get(self) -> list[ExternalCertification]:
        """List every scheme by code."""
        return list(
            db().scalars(select(ExternalCertification).order_by(ExternalCertification.code))
        )

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(ExternalCertificationSchema)
    @blp.response(201, CertificationRecordSchema)
    @document_errors(blp, 401, 403, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add a scheme (its code is how certificate imports name it)."""
        return _save(_text(body), None)


@blp.route("/<int:certification_id>")
class Certification(MethodView):
    """One scheme."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, CertificationRecordSchema)
    @document_errors(blp, 401, 403, 404)
    def get(self, certification_id: int) -> ExternalCertification:
        """Return one scheme."""
        return _found(certification_id)

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.arguments(CertificationChangeSchema)
    @blp.response(200, CertificationRecordSchema)
    @document_errors(blp, 401, 403, 404, 422)
    def put(self, body: dict[str, Any], certification_id: int) -> dict[str, Any]:
        """Change a scheme's name or validity; what certificates leverage is recounted."""
        return _save(_text(body), _found(certification_id))


@blp.route("/<int:certification_id>/retire")
class Retirement(MethodView):
    """End a scheme's recognition."""

    @require("staff")
    @blp.doc(security=BEARER)
    @blp.response(200, CertificationRecordSchema)
    @document_errors(blp, 401, 403, 404)
    def post(self, certification_id: int) -> dict[str, Any]:
        """Recognise the scheme until today: certificates issued later no longer leverage it."""
        found = _found(certification_id)
        warnings = retire_external_certification(
            db(), settings(), found, staff=current_user(), on=date.today()
        )
        return _answer(found, warnings)


def _text(body: dict[str, Any]) -> dict[str, Any]:
    """Return loaded values as the text save_external_certification loads (and checks) again."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in body.items() if v}
