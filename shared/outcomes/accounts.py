"""Creating staff and member accounts, their passwords, second factors and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta

import pyotp
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from outcomes.config import Settings
from outcomes.mail import queue_mail
from outcomes.models import ApiToken, Member, User, WebSession, utcnow
from outcomes.security import hash_password, new_token, token_digest, verify_password

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# zxcvbn's scale: 3 is "safely unguessable" against an offline attack on a slow hash.
MIN_PASSWORD_SCORE = 3
# A one-time password (from an approval or a staff reset) works this long, once, to set one.
ONE_TIME_PASSWORD_LIFETIME = timedelta(days=7)
RECOVERY_CODES = 10
# Verifying against a real hash when the e-mail is unknown keeps both paths equally slow,
# so response times do not tell which addresses have accounts.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account cannot be created as asked."""


class PasswordExpired(AccountError):
    """The right one-time password, but past its lifetime."""


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    member_id: int | None = None,
    admin: bool = False,
    one_time: bool = False,
) -> User:
    """Add a staff or member account (the caller commits); one_time: the password must change."""
    if role not in {"staff", "member"}:
        raise AccountError("role must be staff or member")
    if role == "member" and session.get(Member, member_id) is None:
        raise AccountError(f"a member account needs an existing --member-id (got {member_id})")
    if session.scalars(select(User).where(User.email == email.lower())).first():
        raise AccountError(f"an account for {email} already exists")
    if admin and role != "staff":
        raise AccountError("only staff accounts can manage accounts")
    user = User(
        email=email.lower(),
        role=role,
        member_id=member_id if role == "member" else None,
        is_admin=admin,
    )
    set_password(user, password, one_time=one_time)
    session.add(user)
    session.flush()
    return user


def create_token(
    session: Session, *, user: User, name: str, expires_at: datetime | None = None
) -> str:
    """Add an API token for a user and return it; only its digest is stored."""
    token = new_token()
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=token_digest(token), expires_at=expires_at)
    )
    session.flush()
    return token


def user_by_email(session: Session, email: str) -> User | None:
    """Return the account with an e-mail address, or None."""
    return session.scalars(select(User).where(User.email == email.lower())).first()


def check_password(password: str, *, email: str = "") -> None:
    """Refuse a password that is short, overlong, or among those guessed first."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"passwords may have at most {MAX_PASSWORD_LENGTH} characters")
    # zxcvbn knows the common-password lists, words, names, dates and keyboard patterns.
    strength = zxcvbn(password[:72], user_inputs=[email, *email.split("@"), "outcomes"])
    if strength["score"] < MIN_PASSWORD_SCORE:
        why = strength["feedback"]["warning"] or "It is common or easy to guess."
        raise AccountError(
            f"that password is too easy to guess. {why} Use a phrase of four or more "
            "uncommon words, or one from a password manager."
        )


def authenticate(session: Session, *, email: str, password: str) -> User | None:
    """Return the active account whose password matches, or None; PasswordExpired if too old."""
    user = user_by_email(session, email.strip()[:254])
    if user is None:
        verify_password(_DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
        return None
    if not verify_password(user.password_hash, password[:MAX_PASSWORD_LENGTH]):
        return None
    if not user.is_active:
        return None
    if password_expired(user):
        raise PasswordExpired(
            "That one-time password has expired unused. Ask the secretariat's staff for a new one."
        )
    return user


def password_expired(user: User) -> bool:
    """Tell whether an account's one-time password has passed its lifetime unused."""
    expires = user.password_expires_at
    return expires is not None and _aware(expires) <= utcnow()


def set_password(user: User, password: str, *, one_time: bool = False) -> None:
    """Replace an account's password (the caller commits); a one-time one must be changed."""
    if not one_time:  # a one-time password is generated, never chosen
        check_password(password, email=user.email or "")
    user.password_hash = hash_password(password)
    user.must_change_password = one_time
    user.password_expires_at = utcnow() + ONE_TIME_PASSWORD_LIFETIME if one_time else None


def _set_password_signer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="outcomes.set-password")


def _password_fingerprint(user: User) -> str:
    # Part of the link: once the password changes, the link no longer matches and is spent.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def set_password_token(secret_key: str, user: User) -> str:
    """Return a signed token for a link that sets the account's password, once, within 7 days."""
    payload = {"user": user.id, "password": _password_fingerprint(user)}
    return _set_password_signer(secret_key).dumps(payload)


def mail_set_password_link(
    session: Session, settings: Settings, user: User, *, subject: str, opening: str
) -> None:
    """Queue a mail with the account's set-password link (the caller records the change)."""
    token = set_password_token(settings.secret_key, user)
    queue_mail(
        session,
        to=user.email,
        subject=subject,
        body=(
            f"{opening}\n\nSet the password of your account ({user.email}) with this link; it "
            f"works once, for {ONE_TIME_PASSWORD_LIFETIME.days} days:\n\n"
            f"{settings.collector_url}/account/set-password/{token}\n"
        ),
        kind="account",
    )


def user_for_set_password(session: Session, secret_key: str, token: str) -> User | None:
    """Return the active account a set-password token is for; None if expired, spent or forged."""
    try:
        payload = _set_password_signer(secret_key).loads(
            token[:500], max_age=int(ONE_TIME_PASSWORD_LIFETIME.total_seconds())
        )
    except BadData:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        return None
    user = session.get(User, payload["user"])
    if user is None or not user.is_active:
        return None
    if not hmac.compare_digest(_password_fingerprint(user), str(payload.get("password"))):
        return None
    return user


def end_sessions(session: Session, *, user: User) -> None:
    """Sign an account out of every browser (the caller commits)."""
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def revoke_tokens(session: Session, *, user: User) -> None:
    """Revoke every API token of an account (the caller commits)."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def new_totp_secret() -> str:
    """Return a fresh secret for an authenticator app."""
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """Return the otpauth:// address an authenticator app takes (typed or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="Outcomes")


def totp_step(secret: str, code: str) -> int | None:
    """Return the 30-second step a six-digit code belongs to (now, or one step either side)."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp, now = pyotp.TOTP(secret), int(time.time()) // 30
    for step in (now - 1, now, now + 1):
        if secrets.compare_digest(totp.at(step * 30), code):
            return step
    return None


def use_totp(session: Session, user: User, code: str, secret: str | None = None) -> bool:
    """Accept a code of the account's authenticator once: a replayed or older one is refused."""
    step = totp_step(secret or user.totp_secret or "", code)
    if step is None:
        return False
    # Conditional, so two requests racing with the same code cannot both pass.
    claimed = session.execute(
        update(User)
        .where(
            User.id == user.id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(user, ["totp_last_step"])
    return True


def new_recovery_codes(user: User) -> list[str]:
    """Give an account fresh recovery codes; return them to show once (only hashes are kept)."""
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    user.recovery_codes = [hash_password(code) for code in codes]
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Accept one unused recovery code, which then stops working (the caller commits)."""
    code = code.strip().lower()[:20]
    for stored in user.recovery_codes:
        if verify_password(stored, code):
            user.recovery_codes = [other for other in user.recovery_codes if other != stored]
            return True
    return False


def _aware(moment: datetime) -> datetime:
    """Return a time with its zone (SQLite gives times back without one; they are UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


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
