"""Public pages: the front page and the membership application."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from marshmallow import ValidationError

from collector.applications import receive_application
from collector.context import db, settings
from collector.extensions import apply_limit
from collector.web.forms import CERTIFICATION_ROWS, FACILITY_ROWS, application_data, row_errors
from outcomes.models import MEMBERSHIP_CLASSES
from outcomes.schemas import COMMITMENTS, application_schema, countries

bp = Blueprint("public", __name__)


@bp.get("/")
def index() -> str:
    """Show what the collector is and where to go."""
    return render_template("public/index.html")


@bp.route("/apply", methods=["GET", "POST"])
@apply_limit
def apply() -> str | Response | tuple[str, int]:
    """Show and take the membership application form."""
    values = request.form if request.method == "POST" else {}
    errors: dict = {}
    if request.method == "POST":
        raw, positions = application_data(request.form)
        try:
            data = application_schema.load(raw)
        except ValidationError as error:
            errors = row_errors(error.messages_dict, positions)
        else:
            application = receive_application(db(), settings(), data)
            session["application_reference"] = application.reference
            return redirect(url_for("public.applied"))
    page = render_template(
        "public/apply.html",
        values=values,
        errors=errors,
        classes=MEMBERSHIP_CLASSES,
        countries=countries(),
        commitments=COMMITMENTS,
        chosen=request.form.getlist("commitments"),
        facility_rows=FACILITY_ROWS,
        certification_rows=CERTIFICATION_ROWS,
    )
    return (page, 422) if errors else page


@bp.get("/apply/received")
def applied() -> str | Response:
    """Confirm an application with the reference to quote."""
    reference = session.get("application_reference")
    if reference is None:
        return redirect(url_for("public.apply"))
    return render_template("public/applied.html", reference=reference)
