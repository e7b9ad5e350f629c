"""Helpers for driving the collector's web pages through the Flask test client."""

from __future__ import annotations

import re
from itertools import count

from sqlalchemy.orm import Session

from outcomes.accounts import create_user
from outcomes.db import WRITE
from outcomes.models import Member, User
from tests.factories import make_member

PASSWORD = "correct horse battery"
_numbers = count(1)


def writing(session: Session) -> None:
    """End the session's read and start a transaction that takes the write lock first."""
    # On SQLite a read-then-write transaction fails at once ("database is locked") when a
    # worker committed in between; BEGIN IMMEDIATE waits for the lock instead (outcomes.db).
    session.commit()
    session.connection(execution_options=WRITE)


def make_login(
    session: Session, *, role: str = "member", member: Member | None = None, admin: bool = False
) -> User:
    """Add an account that signs in with PASSWORD (a member's, with a new member, by default)."""
    writing(session)
    if role == "member" and member is None:
        member = make_member(session)
    return create_user(
        session,
        email=f"web{next(_numbers)}@example.org",
        password=PASSWORD,
        role=role,
        member_id=member.id if member else None,
        admin=admin,
    )


def csrf_token(client, path: str) -> str:
    """Return the CSRF token of the form on a page."""
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def post_form(client, path: str, data: dict, *, token_from: str | None = None):
    """Submit a form the way a browser does, with the page's CSRF token."""
    token = csrf_token(client, token_from or path)
    return client.post(path, data={**data, "csrf_token": token})


def sign_in(client, user: User, password: str = PASSWORD):
    """Sign a test client in as an account."""
    answer = post_form(client, "/login", {"email": user.email, "password": password})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return answer
