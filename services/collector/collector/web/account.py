"""One's own account: change the password, set up two-factor sign-in and recovery codes."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for

from collector.changes import record_change
from collector.context import db, settings
from collector.web.session import login_required, setup_page, sign_in, web_user
from outcomes.accounts import (
    AccountError,
    end_sessions,
    new_recovery_codes,
    new_totp_secret,
    set_password,
    totp_uri,
    use_totp,
    user_for_set_password,
)
from outcomes.security import verify_password

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/password", methods=["GET", "POST"])
@login_required(None)
def password() -> str | Response | tuple[str, int]:
    """Change one's password; every other session of the account ends."""
    user = web_user()
    if request.method == "GET":
        return render_template("account/password.html")
    current, new = request.form.get("current", "")[:128], request.form.get("new", "")
    if not verify_password(user.password_hash, current):
        return render_template("account/password.html", error="The current password is wrong."), 400
    if new == current:
        error = "Choose a password other than the current one."
        return render_template("account/password.html", error=error), 400
    try:
        set_password(user, new)
    except AccountError as refused:
        return render_template("account/password.html", error=f"Not changed: {refused}."), 400
    end_sessions(db(), user=user)
    sign_in(user)  # this browser goes on in a new session; every other one has ended
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action="account.password_change",
        object_type="user_account",
        object_id=user.id,
    )
    flash("Your password is changed; every other browser is signed out.")
    return redirect(url_for(setup_page(user) or _home(user.role)))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password_from_link(token: str) -> str | Response | tuple[str, int]:
    """Set a new account's password from its mailed link (once, within its lifetime)."""
    user = user_for_set_password(db(), settings().secret_key, token)
    if user is None:
        error = (
            "This link has expired or was used already. Ask the secretariat's staff for a new "
            "one-time password."
        )
        return render_template("account/set_password.html", expired=error), 404
    if request.method == "GET":
        return render_template("account/set_password.html", email=user.email)
    new = request.form.get("new", "")
    if new != request.form.get("again", ""):
        error = "The two passwords differ; type the same one twice."
        return render_template("account/set_password.html", email=user.email, error=error), 400
    try:
        set_password(user, new)
    except AccountError as refused:
        error = f"Not set: {refused}."
        return render_template("account/set_password.html", email=user.email, error=error), 400
    end_sessions(db(), user=user)
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action="account.password_set_from_link",
        object_type="user_account",
        object_id=user.id,
    )
    flash("Your password is set. Sign in with it.")
    return redirect(url_for("auth.login"))


@bp.route("/two-factor", methods=["GET", "POST"])
@login_required(None)
def two_factor() -> str | Response | tuple[str, int]:
    """Set up an authenticator app, or get new recovery codes with a current code."""
    user = web_user()
    if user.totp_secret is not None:
        left = len(user.recovery_codes)
        if request.method == "GET":
            return render_template("account/two_factor.html", enabled=True, left=left)
        if not use_totp(db(), user, request.form.get("code", "")[:10]):
            flash("That code is not right.")
            return redirect(url_for("account.two_factor"))
        return _show_new_codes(user, action="account.recovery_codes")
    # The secret waits in the signed session cookie until a code proves the app has it.
    secret = session.get("totp_setup")
    if not isinstance(secret, str):
        secret = session["totp_setup"] = new_totp_secret()
    page = {
        "secret": secret,
        "uri": totp_uri(secret, user.email),
        "required": setup_page(user) == "account.two_factor",
    }
    if request.method == "GET":
        return render_template("account/two_factor.html", **page)
    if not use_totp(db(), user, request.form.get("code", "")[:10], secret):
        return render_template("account/two_factor.html", error="That code is not right.", **page)
    user.totp_secret = secret
    session.pop("totp_setup", None)
    return _show_new_codes(user, action="account.two_factor_on")


def _show_new_codes(user, *, action: str) -> str:
    """Replace the account's recovery codes, record it, and show the new ones once."""
    codes = new_recovery_codes(user)
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action=action,
        object_type="user_account",
        object_id=user.id,
    )
    return render_template("account/two_factor.html", codes=codes)


def _home(role: str) -> str:
    return "staff.index" if role == "staff" else "member.index"
