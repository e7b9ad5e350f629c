"""The recognised external certification schemes and their validity."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from collector.context import db, settings
from collector.records import retire_external_certification, save_external_certification
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.models import ExternalCertification


@bp.route("/external-certifications", methods=["GET", "POST"])
@login_required("staff")
def external_certifications() -> str | Response | tuple[str, int]:
    """List the recognised external schemes with their validity; add one."""
    return _certification_form(None)


@bp.route("/external-certifications/<int:certification_id>", methods=["GET", "POST"])
@login_required("staff")
def external_certification(certification_id: int) -> str | Response | tuple[str, int]:
    """Change a scheme's name or validity dates."""
    return _certification_form(_certification(certification_id))


@bp.post("/external-certifications/<int:certification_id>/retire")
@login_required("staff")
def retire_certification(certification_id: int) -> Response:
    """End a scheme's recognition today: certificates issued from tomorrow no longer leverage it."""
    session = db()
    found = _certification(certification_id)
    retire_external_certification(session, settings(), found, staff=web_user(), on=date.today())
    flash(f"{found.code} is recognised until {found.valid_until}.")
    return redirect(url_for("staff.external_certifications"))


def _certification(certification_id: int) -> ExternalCertification:
    found = db().get(ExternalCertification, certification_id)
    if found is None:
        abort(404, description="No such external certification.")
    return found


def _certification_form(
    found: ExternalCertification | None,
) -> str | Response | tuple[str, int]:
    """Show the list (and the form to add or edit one scheme); save a valid form."""
    session = db()
    values: dict = {}
    errors: dict = {}
    if found is not None:
        values = {
            "code": found.code,
            "name": found.name,
            "valid_from": found.valid_from.isoformat(),
            "valid_until": found.valid_until.isoformat() if found.valid_until else "",
        }
    if request.method == "POST":
        names = (
            ("name", "valid_from", "valid_until")
            if found
            else ("code", "name", "valid_from", "valid_until")
        )
        posted = {n: request.form.get(n, "").strip() for n in names}
        values = {**values, **posted}
        try:
            saved = save_external_certification(
                session,
                settings(),
                {k: v for k, v in posted.items() if v},
                staff=web_user(),
                found=found,
            )
        except ValidationError as invalid:
            session.rollback()
            errors = invalid.normalized_messages()
        else:
            flash(f"{saved.code} saved.")
            return redirect(url_for("staff.external_certifications"))
    listed = session.scalars(select(ExternalCertification).order_by(ExternalCertification.code))
    page = render_template(
        "staff/external_certifications.html",
        certifications=list(listed),
        editing=found,
        values=values,
        errors=errors,
        today=date.today(),
    )
    return (page, 422) if errors else page
