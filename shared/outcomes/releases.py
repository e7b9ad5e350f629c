"""Releases: staff publish a build with a title and notes, withdraw it with a public reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from outcomes.models import Snapshot, utcnow
from outcomes.models.published import PUBLIC_STATUSES

# A preview link opens the dashboard for one build this long after staff asked for it.
PREVIEW_SECONDS = 30 * 60
PREVIEW_SALT = "outcomes.build-preview"
TITLE_MAX, NOTES_MAX, REASON_MAX = 200, 5000, 2000


class ReleaseError(Exception):
    """A refused release or withdrawal: the HTTP status and a message a person can act on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReleaseView:
    """A release as the public sees it."""

    id: int
    number: int | None
    title: str
    released_at: datetime | None
    as_of: str
    notes: str
    status: str
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    replaced_by: int | None
    replaced_by_title: str | None

    def label(self) -> str:
        """Return how the public names this release: its title and date."""
        when = self.released_at.date().isoformat() if self.released_at else self.as_of
        return f"{self.title} ({when})"


def release_build(
    db: Session | Connection,
    *,
    build_id: int,
    title: str,
    notes: str,
    released_by: int | None,
) -> int:
    """Make a built snapshot the current release in one conditional UPDATE; return its number.

    The caller commits. Two staff releasing at once: the UPDATE's status check (same build) or
    the unique release number (different builds) lets exactly one of them through.
    """
    s = aliased(Snapshot)
    newer = exists().where(s.status == "released", s.id > build_id)
    number = select(func.coalesce(func.max(s.release_number), 0) + 1).scalar_subquery()
    try:
        done = db.execute(
            update(Snapshot)
            .where(Snapshot.id == build_id, Snapshot.status == "built", ~newer)
            .values(
                status="released",
                title=title.strip()[:TITLE_MAX],
                notes=notes.strip()[:NOTES_MAX],
                released_by=released_by,
                released_at=utcnow(),
                release_number=number,
            )
        )
    except IntegrityError:
        raise ReleaseError(
            409, "Another release was made at the same moment: reload the list and try again."
        ) from None
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise _release_refusal(db, build_id)
    return int(db.scalar(select(Snapshot.release_number).where(Snapshot.id == build_id)) or 0)


def _release_refusal(db: Session | Connection, build_id: int) -> ReleaseError:
    """Explain why a build could not be released."""
    status = db.scalar(select(Snapshot.status).where(Snapshot.id == build_id))
    if status is None:
        return ReleaseError(404, f"There is no build {build_id}.")
    if status == "released":
        return ReleaseError(409, f"Build {build_id} is already released.")
    if status == "withdrawn":
        return ReleaseError(
            409, f"Build {build_id} was released and withdrawn; release a newer build."
        )
    if status != "built":
        return ReleaseError(
            409, f"Build {build_id} is {status}; only a finished build can be released."
        )
    current = db.scalar(select(func.max(Snapshot.id)).where(Snapshot.status == "released"))
    return ReleaseError(
        409,
        f"Build {build_id} is older than the current release (build {current}): "
        "release a newer build, or withdraw the current release first.",
    )


def withdraw_release(
    session: Session,
    *,
    release_id: int,
    reason: str,
    replaced_by: int | None,
    withdrawn_by: int | None,
) -> None:
    """Withdraw a release with a public reason, naming the release that replaces it if any."""
    reason = reason.strip()
    if not reason:
        raise ReleaseError(422, "Give the reason for the withdrawal: the public will read it.")
    if replaced_by is not None:
        if replaced_by == release_id:
            raise ReleaseError(422, "A release cannot replace itself.")
        status = session.scalar(select(Snapshot.status).where(Snapshot.id == replaced_by))
        if status != "released":
            raise ReleaseError(
                422, f"The replacement must be a current release; {replaced_by} is not."
            )
    done = session.execute(
        update(Snapshot)
        .where(Snapshot.id == release_id, Snapshot.status == "released")
        .values(
            status="withdrawn",
            withdrawn_reason=reason[:REASON_MAX],
            withdrawn_at=utcnow(),
            withdrawn_by=withdrawn_by,
            replaced_by=replaced_by,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        status = session.scalar(select(Snapshot.status).where(Snapshot.id == release_id))
        if status is None:
            raise ReleaseError(404, f"There is no release {release_id}.")
        raise ReleaseError(409, f"Build {release_id} is {status}; only a release can be withdrawn.")


def public_releases(session: Session) -> list[ReleaseView]:
    """Return every release, current and withdrawn, newest first."""
    replacement = aliased(Snapshot)
    rows = session.execute(
        select(Snapshot, replacement.title)
        .outerjoin(replacement, replacement.id == Snapshot.replaced_by)
        .where(Snapshot.status.in_(PUBLIC_STATUSES))
        .order_by(Snapshot.id.desc())
    )
    return [_view(s, title) for s, title in rows]


def public_release(session: Session, *, release_id: int) -> ReleaseView | None:
    """Return one release, current or withdrawn, or None for anything else."""
    return next((r for r in public_releases(session) if r.id == release_id), None)


def _view(s: Snapshot, replaced_by_title: str | None) -> ReleaseView:
    return ReleaseView(
        id=s.id,
        number=s.release_number,
        title=s.title or f"Release {s.release_number or s.id}",
        released_at=s.released_at,
        as_of=s.as_of.isoformat(),
        notes=s.notes or "",
        status=s.status,
        withdrawn_at=s.withdrawn_at,
        withdrawn_reason=s.withdrawn_reason,
        replaced_by=s.replaced_by,
        replaced_by_title=replaced_by_title,
    )


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=PREVIEW_SALT)


def preview_token(secret_key: str, *, build_id: int) -> str:
    """Return a signed, short-lived token that opens the dashboard for one build."""
    return str(_serializer(secret_key).dumps({"build": build_id}))


def previewed_build(secret_key: str, token: str, *, max_age: int = PREVIEW_SECONDS) -> int | None:
    """Return the build a preview token opens, or None if it is forged, expired or malformed."""
    if not secret_key:
        return None  # no secret, no previews: an empty key would sign anyone's token
    try:
        payload = _serializer(secret_key).loads(token[:500], max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    build = payload.get("build") if isinstance(payload, dict) else None
    return build if isinstance(build, int) else None
