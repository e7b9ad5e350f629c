"""Accounts: list them, give one a new one-time password (staff who manage accounts only)."""

from __future__ import annotations

from flask import abort, render_template
from sqlalchemy import select

from collector.changes import record_change
from collector.context import db, settings
from collector.web.session import login_required, web_user
from collector.web.staff.common import bp
from outcomes.accounts import (
    end_sessions,
    mail_set_password_link,
    revoke_tokens,
    set_password,
    temporary_password,
)
from outcomes.models import Member, User


@bp.get("/accounts")
@login_required("staff")
def accounts() -> str:
    """List every account with its member."""
    _admins_only()
    rows = db().execute(
        select(User, Member.name)
        .outerjoin(Member, Member.id == User.member_id)
        .order_by(User.email)
    )
    return render_template("staff/accounts.html", rows=list(rows), reset=None)


@bp.post("/accounts/<int:user_id>/password")
@login_required("staff")
def reset_password(user_id: int) -> str:
    """Give an account a one-time password, shown once, and mail it a set-password link."""
    _admins_only()
    session = db()
    account = session.get(User, user_id)
    if account is None:
        abort(404, description="No such account.")
    password = temporary_password()
    # Whoever had the account (a leaked password, a copied cookie or token) is shut out; the
    # new password works once, for a week, to choose one only its owner knows.
    set_password(account, password, one_time=True)
    end_sessions(session, user=account)
    revoke_tokens(session, user=account)
    mail_set_password_link(
        session,
        settings(),
        account,
        subject="Your Outcomes password was reset",
        opening=(
            "The secretariat's staff reset the password of your account: every browser and API "
            "token signed in with it has been signed out."
        ),
    )
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


def _admins_only() -> None:
    """Let only staff who manage accounts through; other staff get 403."""
    if not web_user().is_admin:
        abort(403, description="Managing accounts needs a staff account with the admin role.")
