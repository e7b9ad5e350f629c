"""Signing in (password, then a second factor where the account has one) and out."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for

from collector.changes import record_change
from collector.context import db, settings
from collector.extensions import limiter
from collector.web.session import current_session, sign_in, sign_out, web_user
from outcomes.accounts import PasswordExpired, authenticate, use_recovery_code, use_totp
from outcomes.models import User

bp = Blueprint("auth", __name__)

# Only failed attempts count (a redirect means the password was right). Three counts, so that
# neither one guesser nor many addresses get far: per address and account, per account from
# any address (a lockout that ends by itself: the owner waits at most 15 minutes), and per
# address across accounts (password spraying).
LOGIN_LIMIT = "5 per 15 minutes"
ACCOUNT_LIMIT = "10 per 15 minutes"
ADDRESS_LIMIT = "30 per 15 minutes"
FACTOR_LIMIT = "5 per 15 minutes"
WAIT = "Too many failed sign-ins. Wait 15 minutes and try again."


def _email() -> str:
    return request.form.get("email", "").strip().lower()[:254]


def _failures(limit: str, key: Callable[[], str]) -> Callable[[Callable], Callable]:
    """Limit the failed sign-in POSTs under one key (a redirect means it succeeded)."""
    return limiter.limit(
        limit,
        methods=["POST"],
        key_func=key,
        deduct_when=lambda response: response.status_code != 302,
        error_message=WAIT,
    )


def _home() -> str:
    user = web_user()
    if user is None:
        return url_for("public.index")
    return url_for("staff.index" if user.role == "staff" else "member.index")


def _next_or_home() -> str:
    """Return the same-site path to continue to: an attacker's link must not bounce elsewhere."""
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        return _home()
    return target


@bp.route("/login", methods=["GET", "POST"])
@_failures(LOGIN_LIMIT, lambda: f"{request.remote_addr}|{_email()}")
@_failures(ACCOUNT_LIMIT, lambda: f"account|{_email()}")
@_failures(ADDRESS_LIMIT, lambda: f"address|{request.remote_addr}")
def login() -> str | Response | tuple[str, int]:
    """Show the sign-in form; sign in on a right e-mail and password."""
    if request.method == "GET":
        return render_template("auth/login.html", email="")
    email = request.form.get("email", "")[:254]
    try:
        user = authenticate(db(), email=email, password=request.form.get("password", ""))
    except PasswordExpired as expired:
        return render_template("auth/login.html", email=email, error=str(expired)), 401
    if user is None:
        return render_template(
            "auth/login.html", email=email, error="That e-mail and password do not match."
        ), 401
    pending = user.totp_secret is not None
    sign_in(user, pending_factor=pending)
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action="session.password" if pending else "session.login",
        object_type="user_account",
        object_id=user.id,
    )
    if pending:
        return redirect(url_for("auth.factor", next=request.args.get("next", "")))
    return redirect(_next_or_home())


@bp.route("/login/factor", methods=["GET", "POST"])
@_failures(FACTOR_LIMIT, lambda: f"factor|{session.get('sid', request.remote_addr)}")
def factor() -> str | Response | tuple[str, int]:
    """Ask for the authenticator's code (or a recovery code) after a right password."""
    pending = current_session()
    if pending is None or not pending.pending_factor:
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/factor.html")
    user = db().get(User, pending.user_id)
    code = request.form.get("code", "")[:40]
    if user is None or user.totp_secret is None:
        return redirect(url_for("auth.login"))
    right = use_totp(db(), user, code)
    recovered = not right and use_recovery_code(user, code)
    if not (right or recovered):
        return render_template("auth/factor.html", error="That code is not right."), 401
    sign_in(user)  # a new secret once both factors are given
    record_change(
        db(),
        settings(),
        actor_id=user.id,
        action="session.login",
        object_type="user_account",
        object_id=user.id,
        details={"recovery_code": True} if recovered else None,
    )
    if recovered:
        flash(f"You used a recovery code; {len(user.recovery_codes)} are left.")
    return redirect(_next_or_home())


@bp.post("/logout")
def logout() -> Response:
    """Sign out of every browser."""
    user = web_user()
    sign_out()
    if user is not None:
        record_change(
            db(),
            settings(),
            actor_id=user.id,
            action="session.logout",
            object_type="user_account",
            object_id=user.id,
        )
    flash("You are signed out.")
    return redirect(url_for("public.index"))
