"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from collector.changes import record_change
from collector.context import db, settings
from collector.extensions import limiter
from collector.web.session import sign_in, sign_out, web_user
from outcomes.accounts import authenticate

bp = Blueprint("auth", __name__)

LOGIN_LIMIT = "5 per 15 minutes"


def _login_key() -> str:
    """Count failures per address and e-mail, so one guesser cannot lock out everyone."""
    email = request.form.get("email", "").strip().lower()[:254]
    return f"{request.remote_addr}|{email}"


def _home() -> str:
    user = web_user()
    if user is None:
        return url_for("public.index")
    return url_for("staff.index" if user.role == "staff" else "member.index")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    LOGIN_LIMIT,
    methods=["POST"],
    key_func=_login_key,
    # Only failed attempts count: a redirect means the password was right.
    deduct_when=lambda response: response.status_code != 302,
    error_message="Too many failed sign-ins. Wait 15 minutes and try again.",
)
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form; sign in on a right e-mail and password."""
    if request.method == "GET":
        return render_template("auth/login.html", email="")
    email = request.form.get("email", "")
    user = authenticate(db(), email=email, password=request.form.get("password", ""))
    if user is None:
        return render_template(
            "auth/login.html", email=email, error="That e-mail and password do not match."
        ), 401
    sign_in(user)
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action="session.login",
        object_type="user_account",
        object_id=user.id,
    )
    target = request.args.get("next", "")
    # Only same-site paths: an attacker's link must not bounce a fresh login elsewhere.
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        target = _home()
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    """Sign out."""
    sign_out()
    flash("You are signed out.")
    return redirect(url_for("public.index"))
