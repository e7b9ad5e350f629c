"""Who is signed in to the web pages, and who may see which page."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, g, redirect, request, session, url_for

from collector.changes import record_change
from collector.context import db, settings
from outcomes.models import User


def web_user() -> User | None:
    """Return the active account signed in to this browser session, or None."""
    if "web_user" not in g:
        user_id = session.get("user_id")
        user = db().get(User, user_id) if user_id is not None else None
        g.web_user = user if user is not None and user.is_active else None
    return g.web_user


def sign_in(user: User) -> None:
    """Start a fresh session for an account (a new cookie, so an old one cannot be reused)."""
    session.clear()
    session["user_id"] = user.id
    session.permanent = True
    g.web_user = user


def sign_out() -> None:
    """End the browser session."""
    session.clear()
    g.web_user = None


def login_required(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a page run only for a signed-in account of a role; others are sent to sign in."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = web_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if user.role != role or (role == "member" and user.member_id is None):
                abort(403, description=f"This page is for {role} accounts.")
            return view(*args, **kwargs)

        return wrapped

    return decorate


def refuse(user: User, *, object_type: str, object_id: object) -> None:
    """Record an attempt to reach something that is not the user's, then answer 404."""
    session_ = db()
    session_.rollback()
    record_change(
        session_,
        settings(),
        actor_id=user.id,
        action="access.denied",
        object_type=object_type,
        object_id=object_id,
        details={"path": request.path[:200], "method": request.method},
    )
    abort(404, description="There is no such page, or it is not yours.")
