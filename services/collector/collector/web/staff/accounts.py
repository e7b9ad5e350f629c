"""Accounts: list them, give one a new temporary password."""

from __future__ import annotations

from flask import abort, render_template
from sqlalchemy import select

from collector.changes import record_change
from collector.context import db, settings
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.accounts import set_password, temporary_password
from outcomes.models import Member, User


@bp.get("/accounts")
@login_required("staff")
def accounts() -> str:
    """List every account with its member."""
    rows = db().execute(
        select(User, Member.name)
        .outerjoin(Member, Member.id == User.member_id)
        .order_by(User.email)
    )
    return render_template("staff/accounts.html", rows=list(rows), reset=None)


@bp.post("/accounts/<int:user_id>/password")
@login_required("staff")
def reset_password(user_id: int) -> str:
    """Give an account a new temporary password, shown once to the staff member."""
    session = db()
    account = session.get(User, user_id)
    if account is None:
        abort(404, description="No such account.")
    password = temporary_password()
    set_password(account, password)
    record_change(
        session,
        settings(),
        actor_id=web_user().id,
        action="account.password_reset",
        object_type="user_account",
        object_id=account.id,
    )
    rows = session.execute(
        select(User, Member.name)
        .outerjoin(Member, Member.id == User.member_id)
        .order_by(User.email)
    )
    return render_template("staff/accounts.html", rows=list(rows), reset=(account.email, password))
