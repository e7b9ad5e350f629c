"""Creating staff and member accounts and their API tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.models import ApiToken, Member, User
from outcomes.security import hash_password, new_token, token_digest


class AccountError(ValueError):
    """An account cannot be created as asked."""


def create_user(
    session: Session, *, email: str, password: str, role: str, member_id: int | None = None
) -> User:
    """Add a staff or member account (the caller commits)."""
    if role not in {"staff", "member"}:
        raise AccountError("role must be staff or member")
    if role == "member" and session.get(Member, member_id) is None:
        raise AccountError(f"a member account needs an existing --member-id (got {member_id})")
    if session.scalars(select(User).where(User.email == email.lower())).first():
        raise AccountError(f"an account for {email} already exists")
    if len(password) < 12:
        raise AccountError("passwords need at least 12 characters")
    user = User(
        email=email.lower(),
        password_hash=hash_password(password),
        role=role,
        member_id=member_id if role == "member" else None,
    )
    session.add(user)
    session.flush()
    return user


def create_token(session: Session, *, user: User, name: str) -> str:
    """Add an API token for a user and return it; only its digest is stored."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_digest(token)))
    session.flush()
    return token


def user_by_email(session: Session, email: str) -> User | None:
    """Return the account with an e-mail address, or None."""
    return session.scalars(select(User).where(User.email == email.lower())).first()
