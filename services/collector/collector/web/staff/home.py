"""The staff's start page: what waits for them."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from collector.context import db
from collector.web.session import login_required
from collector.web.staff.common import bp
from outcomes.models import Application, SurveyResponse


@bp.get("")
@login_required("staff")
def index() -> str:
    """Show what waits for staff."""
    session = db()
    waiting = {
        "applications": session.scalar(
            select(func.count()).select_from(Application).where(Application.status == "received")
        ),
        "responses": session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.status == "submitted")
        ),
    }
    return render_template("staff/index.html", waiting=waiting)
