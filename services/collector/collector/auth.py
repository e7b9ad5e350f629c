"""Bearer-token authentication for the API, and the current user."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_smorest import abort
from sqlalchemy import select

from collector.context import db
from outcomes.models import ApiToken, User
from outcomes.security import token_digest


def _bearer_user() -> User | None:
    """Return the active user whose unrevoked token the request carries."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    user = db().scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_digest(token.strip()), ApiToken.revoked_at.is_(None))
    )
    return user if user is not None and user.is_active else None


def require(role: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let a view run only for a token holder (of the given role, if one is named)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = _bearer_user()
            if user is None:
                abort(
                    401,
                    message="Send a valid API token: 'Authorization: Bearer <token>'.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if role is not None and user.role != role:
                abort(403, message=f"This needs a {role} account.")
            if user.role == "member" and user.member_id is None:
                abort(403, message="This account is not linked to a member organisation.")
            g.user = user
            return view(*args, **kwargs)

        return wrapped

    return decorate


def current_user() -> User:
    """Return the user the request was authenticated as."""
    return g.user
