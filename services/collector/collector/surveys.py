"""Saving a member's survey: validate, keep every revision, ask for re-aggregation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from outcomes.config import Settings
from outcomes.models import (
    AuditLog,
    IdempotencyRecord,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    User,
    utcnow,
)
from outcomes.queries import open_survey, survey_questions
from outcomes.queue import enqueue, request_aggregation
from outcomes.schemas import answers_schema

MAX_KEY_LENGTH = 200


@dataclass
class SurveyError(Exception):
    """A refusal with the HTTP status and the messages to show."""

    status: int
    message: str
    errors: dict[str, Any] = field(default_factory=dict)


def save_survey(
    session: Session,
    settings: Settings,
    *,
    user: User,
    year: int,
    submission: dict[str, Any],
    idempotency_key: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """Save a new revision of the user's member's response and return (status, body)."""
    request_hash = _digest({"year": year, **submission})
    if idempotency_key is not None:
        if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
            raise SurveyError(400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
        replay = _replay(session, user.id, idempotency_key, request_hash)
        if replay is not None:
            return replay
    try:
        body, outbox = _write_revision(session, user, year, submission)
        if idempotency_key is not None:
            session.add(
                IdempotencyRecord(
                    user_id=user.id,
                    key=idempotency_key,
                    request_hash=request_hash,
                    status_code=200,
                    body=body,
                )
            )
        session.commit()
    except IntegrityError:
        # A concurrent request with the same key (or the same new response) won the race.
        session.rollback()
        replay = idempotency_key and _replay(session, user.id, idempotency_key, request_hash)
        if replay:
            return replay
        raise SurveyError(
            409, "Another save of this survey happened at the same time; retry."
        ) from None
    if outbox is not None:
        enqueue(settings, outbox)
    return 200, body


def current_response(
    session: Session, *, member_id: int | None, year: int
) -> dict[str, Any] | None:
    """Return a member's response for a year with its latest revision, or None."""
    row = session.execute(
        select(SurveyResponse, SurveyRevision)
        .join(
            SurveyRevision,
            (SurveyRevision.response_id == SurveyResponse.id)
            & (SurveyRevision.number == SurveyResponse.current_revision),
        )
        .where(SurveyResponse.member_id == member_id, SurveyResponse.year == year)
    ).first()
    if row is None:
        return None
    return _body(row.SurveyResponse, row.SurveyRevision.answers)


def _write_revision(
    session: Session, user: User, year: int, submission: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    """Validate and add a revision, its answers, an audit row and (if submitted) an outbox row."""
    definition = open_survey(session, year=year)
    if definition is None:
        raise SurveyError(404, f"No survey is open for reporting year {year}.")
    questions = survey_questions(session, definition_id=definition.id)
    status = submission["status"]
    schema = answers_schema(questions, partial=status == "draft")
    try:
        answers = schema.load(submission["answers"])
    except ValidationError as error:
        raise SurveyError(
            422, "Some answers need correcting.", {"json": {"answers": error.messages}}
        ) from None
    stored = schema.dump(answers)
    response = session.scalars(
        select(SurveyResponse)
        .where(SurveyResponse.member_id == user.member_id, SurveyResponse.year == year)
        .with_for_update()
    ).first()
    if response is None:
        response = SurveyResponse(
            member_id=user.member_id, year=year, definition_id=definition.id, current_revision=0
        )
        session.add(response)
    response.current_revision += 1
    response.status = status
    response.definition_id = definition.id
    response.updated_at = utcnow()
    session.flush()
    revision = SurveyRevision(
        response_id=response.id,
        number=response.current_revision,
        status=status,
        answers=stored,
        submitted_by=user.id,
    )
    session.add(revision)
    session.flush()
    typed = _typed_answers(revision.id, questions, answers)
    if typed:
        session.execute(insert(SurveyAnswer), typed)
    outbox = None
    if status == "submitted":
        outbox = request_aggregation(
            session, reason=f"survey {year} submitted", requested_by=user.id
        )
    session.add(
        AuditLog(
            actor_id=user.id,
            action=f"survey.{status}",
            object_type="survey_response",
            object_id=str(response.id),
            details={"year": year, "revision": revision.number},
        )
    )
    return _body(response, stored), outbox


def _typed_answers(
    revision_id: int, questions: list[SurveyQuestion], answers: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return answer rows with numbers as numbers, so SQL can aggregate them."""
    rows = []
    for question in questions:
        value = answers.get(question.key)
        if value is None:
            continue
        numeric = question.type in {"integer", "decimal", "boolean"}
        rows.append(
            {
                "revision_id": revision_id,
                "question_key": question.key,
                "value_number": float(value) if numeric else None,
                "value_text": None if numeric else _text(value),
            }
        )
    return rows


def _text(value: Any) -> str:
    """Return an answer as text; several choices are joined by ';'."""
    return ";".join(map(str, value)) if isinstance(value, list) else str(value)


def _replay(
    session: Session, user_id: int, key: str, request_hash: str
) -> tuple[int, dict[str, Any]] | None:
    """Return the stored answer to an earlier request with this key, or None."""
    record = session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise SurveyError(
            409,
            "This Idempotency-Key was already used with a different body; "
            "use a new key for a new submission.",
        )
    return record.status_code, record.body


def _body(response: SurveyResponse, answers: dict[str, Any]) -> dict[str, Any]:
    """Return the API representation of a response."""
    return {
        "year": response.year,
        "status": response.status,
        "revision": response.current_revision,
        "answers": answers,
        "updated_at": response.updated_at.isoformat(),
    }


def _digest(payload: dict[str, Any]) -> str:
    """Return a stable digest of a request body."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def revision_history(session: Session, *, member_id: int, year: int) -> list[dict[str, Any]]:
    """Return every revision of a member's response, newest first, each with its changes."""
    rows = list(
        session.execute(
            select(SurveyRevision, User.email)
            .join(SurveyResponse, SurveyResponse.id == SurveyRevision.response_id)
            .outerjoin(User, User.id == SurveyRevision.submitted_by)
            .where(SurveyResponse.member_id == member_id, SurveyResponse.year == year)
            .order_by(SurveyRevision.number)
        )
    )
    history, before = [], {}
    for revision, email in rows:
        history.append(
            {"revision": revision, "by": email, "changes": answer_changes(before, revision.answers)}
        )
        before = revision.answers
    return history[::-1]


def answer_changes(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Return (question key, old, new) for every answer that differs between two revisions."""
    keys = sorted(set(before) | set(after))
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def decide_response(
    session: Session,
    settings: Settings,
    *,
    response: SurveyResponse,
    staff: User,
    accept: bool,
    reason: str = "",
) -> None:
    """Accept a submitted response (asking for re-aggregation) or reject it with a reason."""
    if response.status != "submitted":
        raise SurveyError(
            409, f"Only a submitted response can be decided; this one is {response.status}."
        )
    if not accept and not reason.strip():
        raise SurveyError(422, "Give the reason for a rejection.", {"reason": ["Required."]})
    response.status = "accepted" if accept else "rejected"
    response.updated_at = utcnow()
    outbox = None
    if accept:
        # Only accepted responses are aggregated, so an acceptance changes the public figures.
        outbox = request_aggregation(
            session, reason=f"survey {response.year} accepted", requested_by=staff.id
        )
    session.add(
        AuditLog(
            actor_id=staff.id,
            action=f"survey.{response.status}",
            object_type="survey_response",
            object_id=str(response.id),
            details={
                "year": response.year,
                "revision": response.current_revision,
                "reason": reason,
            },
        )
    )
    session.commit()
    if outbox is not None:
        enqueue(settings, outbox)
