"""Bearer-token authentication for the API, and the current user."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from functools import wraps
from typing import Any

from flask import g, request
from flask_smorest import abort
from sqlalchemy import or_, select, update

from collector.context import db
from outcomes.models import ApiToken, User, utcnow
from outcomes.security import token_digest

# last_used_at is written at most this often: the survey PUT is the hot path, and a write per
# request would cost more than the answer to "when was this token last used?" is worth.
LAST_USED_EVERY = timedelta(minutes=1)


def _bearer_user() -> User | None:
    """Return the active user whose unrevoked, unexpired token the request carries."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    now = utcnow()
    found = (
        db()
        .execute(
            select(User, ApiToken.id, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == token_digest(token.strip()),
                ApiToken.revoked_at.is_(None),
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
            )
        )
        .first()
    )
    if found is None or not found.User.is_active:
        return None
    last = found.last_used_at
    if last is None or now - (last if last.tzinfo else last.replace(tzinfo=UTC)) > LAST_USED_EVERY:
        db().execute(update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now))
        db().commit()  # before the view runs: nothing of the request's own is committed with it
    return found.User


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
