"""Creating staff and member accounts and their API tokens."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from outcomes.models import ApiToken, Member, User, utcnow
from outcomes.security import hash_password, new_token, token_digest, verify_password

MIN_PASSWORD_LENGTH = 12
# Verifying against a real hash when the e-mail is unknown keeps both paths equally slow,
# so response times do not tell which addresses have accounts.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


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
    _check_password(password)
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


def _check_password(password: str) -> None:
    """Refuse a password too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """Return the active account whose password matches, or None."""
    user = user_by_email(session, email.strip())
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def set_password(user: User, password: str) -> None:
    """Replace an account's password (the caller commits)."""
    _check_password(password)
    user.password_hash = hash_password(password)


def temporary_password() -> str:
    """Return a random password to hand to a person once."""
    return secrets.token_urlsafe(12)


def user_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """Return an account's API tokens, newest first."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(session.scalars(query))


def revoke_token(session: Session, *, user: User, token_id: int) -> ApiToken | None:
    """Revoke one of the user's own tokens; return None if the token is not theirs."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        return None
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
