"""Who is signed in to the web pages, and who may see which page.

A browser session is a row (web_session) named by the digest of a secret that only the
session cookie holds: signing out, a password change or a reset deletes the rows, so a copied
cookie stops working; a session ends after IDLE without a request and ABSOLUTE after sign-in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import abort, g, redirect, request, session, url_for

from collector.context import db, settings
from outcomes.accounts import end_sessions
from outcomes.models import AuditLog, User, WebSession, utcnow
from outcomes.security import token_digest

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
# How stale seen_at may get before a request writes it again: one write a minute, not each.
TOUCH_EVERY = timedelta(minutes=1)
# Pages an account may reach before it has chosen its own password or set up a second factor.
SETUP_PAGES = {"account.password", "account.two_factor", "auth.logout", "static"}


def current_session() -> WebSession | None:
    """Return this browser's live session row (ending it if it is too old), or None."""
    if "web_session" not in g:
        g.web_session = _live_session()
    return g.web_session


def _live_session() -> WebSession | None:
    secret = session.get("sid")
    if not isinstance(secret, str):
        return None
    found = db().get(WebSession, token_digest(secret))
    if found is None:
        return None
    now = utcnow()
    seen, started = _utc(found.seen_at), _utc(found.created_at)
    if now - seen > IDLE or now - started > ABSOLUTE:
        db().delete(found)
        db().commit()  # first in the request (see init_web): nothing else is committed with it
        return None
    if now - seen > TOUCH_EVERY:
        found.seen_at = now
        db().commit()
    return found


def web_user() -> User | None:
    """Return the active account signed in (second factor given) to this browser, or None."""
    if "web_user" not in g:
        found = current_session()
        user = db().get(User, found.user_id) if found and not found.pending_factor else None
        g.web_user = user if user is not None and user.is_active else None
    return g.web_user


def sign_in(user: User, *, pending_factor: bool = False) -> None:
    """Start a fresh session for an account (a new secret; the caller commits)."""
    session.clear()
    secret = secrets.token_urlsafe(32)
    row = WebSession(id=token_digest(secret), user_id=user.id, pending_factor=pending_factor)
    db().add(row)
    session["sid"] = secret
    session.permanent = True
    g.web_session = row
    g.web_user = None if pending_factor else user


def sign_out() -> None:
    """End every session of the signed-in account, this browser's included (caller commits)."""
    found = current_session()
    if found is not None:
        end_sessions(db(), user=db().get(User, found.user_id))
    session.clear()
    g.web_session = g.web_user = None


def login_required(role: str | None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a page run only for a signed-in account (of a role, if one is named)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = web_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if role is not None and (
                user.role != role or (role == "member" and user.member_id is None)
            ):
                abort(403, description=f"This page is for {role} accounts.")
            setup = setup_page(user)
            if setup is not None and request.endpoint not in SETUP_PAGES:
                return redirect(url_for(setup))
            return view(*args, **kwargs)

        return wrapped

    return decorate


def setup_page(user: User) -> str | None:
    """Return the page an account must complete first: its own password, a second factor."""
    if user.must_change_password:
        return "account.password"
    if user.role == "staff" and user.totp_secret is None and settings().require_staff_totp:
        return "account.two_factor"
    return None


def refuse(user: User, *, object_type: str, object_id: object) -> None:
    """Record an attempt to reach something that is not the user's, then answer 404."""
    session_ = db()
    session_.rollback()
    session_.add(
        AuditLog(
            actor_id=user.id,
            action="access.denied",
            object_type=object_type,
            object_id=str(object_id)[:40],
            details={"path": request.path[:200], "method": request.method},
        )
    )
    session_.commit()
    abort(404, description="There is no such page, or it is not yours.")


def _utc(moment: Any) -> Any:
    """Return a stored time with its zone (SQLite returns UTC times without one)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)
