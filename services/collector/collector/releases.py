"""Staff review builds against the current release, preview, release and withdraw them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.changes import record_change
from outcomes.catalogue import by_code
from outcomes.config import Settings
from outcomes.diff import snapshot_changes
from outcomes.models import Snapshot, User
from outcomes.releases import (
    PREVIEW_SECONDS,
    ReleaseError,
    preview_token,
    release_build,
    withdraw_release,
)

# A headline that moves by more than this share of its old value is flagged for a second look.
LARGE_CHANGE = 0.10
# What each counted input is called on the review page.
INPUT_NAMES = {
    "member": "members",
    "facility": "facilities",
    "certificate": "certificates",
    "auditing_firm": "auditing firms",
    "training": "trainings",
    "meeting": "meetings",
    "survey_response": "survey responses",
    "survey_revision": "survey revisions saved",
    "accepted_responses": "survey responses accepted",
    "application": "membership applications",
}
BUILDS_SHOWN = 100


def list_builds(session: Session) -> list[Snapshot]:
    """Return the newest builds, releases and failures, newest first."""
    query = select(Snapshot).order_by(Snapshot.id.desc()).limit(BUILDS_SHOWN)
    return list(session.scalars(query))


def current_release(session: Session) -> Snapshot | None:
    """Return the newest release that stands, or None."""
    query = select(Snapshot).where(Snapshot.status == "released").order_by(Snapshot.id.desc())
    return session.scalars(query.limit(1)).first()


def compare_with_release(session: Session, build: Snapshot) -> dict[str, Any]:
    """Return what changed from the current release to a build: headlines and the inputs."""
    release = current_release(session)
    changes = (
        []
        if release is None or release.id == build.id
        else snapshot_changes(
            session, old_id=release.id, new_id=build.id, statuses=("built", "released")
        )
    )
    catalogue = by_code()
    indicators = []
    for change in changes:
        if (change.period, change.breakdown) != ("all", "total"):
            continue
        old, new = change.old, change.new
        large = change.status != "changed" or (
            old is not None and new is not None and abs(new - old) > LARGE_CHANGE * abs(old)
        )
        known = catalogue.get(change.indicator)
        indicators.append(
            {
                "indicator": change.indicator,
                "title": known.title if known else change.indicator,
                "old": old,
                "new": new,
                "status": change.status,
                "large": large,
            }
        )
    before = (release.inputs or {}) if release is not None else {}
    after = build.inputs or {}
    inputs = [
        {
            "input": INPUT_NAMES.get(name, name),
            "old": before.get(name, 0),
            "new": after.get(name, 0),
            "delta": after.get(name, 0) - before.get(name, 0),
        }
        for name in sorted(set(before) | set(after))
        if after.get(name, 0) != before.get(name, 0)
    ]
    return {
        "build_id": build.id,
        "release_id": release.id if release is not None else None,
        "release_title": release.title if release is not None else None,
        "indicators": indicators,
        "cells_changed": len(changes),
        "inputs": inputs,
    }


def release(
    session: Session, settings: Settings, *, staff: User, build_id: int, title: str, notes: str
) -> int:
    """Release a build with a title and notes (audited); raise ReleaseError if refused."""
    if not title.strip():
        raise ReleaseError(422, 'Give the release a title, such as "2025 annual results".')
    try:
        number = release_build(
            session, build_id=build_id, title=title, notes=notes, released_by=staff.id
        )
    except ReleaseError:
        session.rollback()
        raise
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="release.publish",
        object_type="snapshot",
        object_id=build_id,
        details={"title": title.strip()[:200], "release_number": number},
    )
    return number


def withdraw(
    session: Session,
    settings: Settings,
    *,
    staff: User,
    release_id: int,
    reason: str,
    replaced_by: int | None,
) -> None:
    """Withdraw a release with its public reason (audited); raise ReleaseError if refused."""
    try:
        withdraw_release(
            session,
            release_id=release_id,
            reason=reason,
            replaced_by=replaced_by,
            withdrawn_by=staff.id,
        )
    except ReleaseError:
        session.rollback()
        raise
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="release.withdraw",
        object_type="snapshot",
        object_id=release_id,
        details={"reason": reason.strip()[:2000], "replaced_by": replaced_by},
    )


def preview_link(session: Session, settings: Settings, *, build_id: int) -> dict[str, Any]:
    """Return a short-lived dashboard address that shows a build to whoever holds it."""
    status = session.scalar(select(Snapshot.status).where(Snapshot.id == build_id))
    if status is None:
        raise ReleaseError(404, f"There is no build {build_id}.")
    if status not in ("built", "released"):
        raise ReleaseError(409, f"Build {build_id} is {status}: there is nothing to preview.")
    token = preview_token(settings.secret_key, build_id=build_id)
    return {
        "url": f"{settings.dashboard_url}/?preview={token}",
        "expires_in": PREVIEW_SECONDS,
    }
