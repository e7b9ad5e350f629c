"""Survey exports: choose years, revisions and values, then download CSV or a workbook."""

from __future__ import annotations

from flask import Response, render_template, request
from marshmallow import ValidationError, fields, validate
from sqlalchemy import select

from collector.context import db, settings
from collector.exports import ExportError, WideExportQuerySchema, download, wide_export
from collector.web.session import login_required
from collector.web.staff.common import bp
from outcomes.models import SurveyDefinition


class ExportPageSchema(WideExportQuerySchema):
    """The export form: the API's parameters and the file format."""

    format = fields.String(load_default="csv", validate=validate.OneOf(("csv", "xlsx")))


@bp.get("/exports")
@login_required("staff")
def exports() -> tuple[str, int] | Response:
    """Show the export form; with ?download=1, stream the chosen file."""
    chosen = {k: v for k, v in request.args.items() if v and k != "download"}
    errors: dict = {}
    if "download" in request.args:
        try:
            query = ExportPageSchema().load(chosen)
            chunks, name, mimetype = wide_export(
                db(), settings().database_url, query, query["format"]
            )
        except ValidationError as invalid:
            errors = invalid.normalized_messages()
        except ExportError as refusal:
            errors = {refusal.field: [refusal.message]}
        else:
            return download(chunks, name, mimetype)
    years = db().scalars(select(SurveyDefinition.year).distinct().order_by(SurveyDefinition.year))
    page = render_template("staff/exports.html", years=list(years), chosen=chosen, errors=errors)
    return page, 422 if errors else 200
