"""Saving a member's survey: validate, keep every revision, ask for re-aggregation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collector.changes import record_change
from collector.expressions import calculated, form_errors
from outcomes.config import Settings
from outcomes.mail import queue_mail
from outcomes.models import (
    AuditLog,
    IdempotencyRecord,
    SurveyAnswer,
    SurveyDefinition,
    SurveyResponse,
    SurveyRevision,
    User,
    utcnow,
)
from outcomes.queries import survey_questions
from outcomes.repeats import Asked, detached, expand, has_repeats, member_facilities
from outcomes.schemas import answers_schema

MAX_KEY_LENGTH = 200
# Answers kept in value_number (a yes/no as 1 or 0), so SQL can aggregate them.
STORED_AS_NUMBER = frozenset(("integer", "decimal", "boolean"))


@dataclass
class SurveyError(Exception):
    """A refusal with the HTTP status and the messages to show."""

    status: int
    message: str
    errors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenSurvey:
    """An open survey's questions as one member answers them, and their answer schemas."""

    definition_id: int
    asked: tuple[Asked, ...]  # in display order; a repeat's questions once per facility
    submitted: Schema
    draft: Schema
    # (key, required, logic, choices) of each question with XLSForm rules, in display order.
    rules: tuple[tuple[str, bool, dict[str, Any], tuple[dict[str, Any], ...]], ...] = ()

    @classmethod
    def of(cls, definition_id: int, asked: list[Asked]) -> OpenSurvey:
        """Return the open survey of these questions, its schemas built once."""
        return cls(
            definition_id=definition_id,
            asked=tuple(asked),
            submitted=answers_schema(asked),
            draft=answers_schema(asked, partial=True),
            rules=tuple((q.key, q.required, q.logic, tuple(q.choices)) for q in asked if q.logic),
        )

    @property
    def calculated_keys(self) -> list[str]:
        """Return the keys of the questions whose answer the form calculates."""
        return [key for key, _required, logic, _choices in self.rules if "calculate" in logic]

    def calculate(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Return stored answers with the form's calculated questions worked out (if it has any)."""
        if not self.calculated_keys:
            return stored
        numeric = frozenset(q.key for q in self.asked if q.type in STORED_AS_NUMBER)
        return calculated(self.rules, stored, numeric)


# An open definition's questions, and its open survey for each set of facilities, per process.
_definitions: dict[tuple[str, int, datetime], list[Asked]] = {}
_open_surveys: dict[tuple[Any, ...], OpenSurvey] = {}


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
        body, change = _write_revision(session, user, year, submission)
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
        record_change(session, settings, **change)
    except IntegrityError:
        # A concurrent request with the same key (or the same new response) won the race.
        session.rollback()
        replay = idempotency_key and _replay(session, user.id, idempotency_key, request_hash)
        if replay:
            return replay
        raise SurveyError(
            409, "Another save of this survey happened at the same time; retry."
        ) from None
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
    response = row.SurveyResponse
    body = _body(
        year,
        response.status,
        response.current_revision,
        row.SurveyRevision.answers,
        response.updated_at,
    )
    if response.status == "rejected":
        body["staff_message"] = staff_message(session, response.id)
    return body


_d, _r = SurveyDefinition.__table__.c, SurveyResponse.__table__.c
# Built once at import: the survey PUT is the busiest write, and building statements costs CPU.
OPEN_DEFINITION = (
    select(_d.id, _d.created_at)
    .where(_d.year == bindparam("year"), _d.status == "open")
    .order_by(_d.version.desc())
    .limit(1)
)
LOCK_RESPONSE = (
    select(_r.id, _r.current_revision, _r.status)
    .where(_r.member_id == bindparam("member_id"), _r.year == bindparam("year"))
    .with_for_update()
)
ADD_RESPONSE = insert(SurveyResponse.__table__).returning(_r.id)
BUMP_RESPONSE = update(SurveyResponse.__table__).where(_r.id == bindparam("response_id"))
ADD_REVISION = insert(SurveyRevision.__table__).returning(SurveyRevision.__table__.c.id)
ADD_ANSWERS = insert(SurveyAnswer.__table__)
# PostgreSQL takes a revision's answers as three arrays in one statement: one send and one plan
# instead of a prepared send per answer (~30 per PUT through psycopg's executemany).
ADD_ANSWERS_UNNEST = text(
    "INSERT INTO survey_answer (revision_id, question_key, value_number, value_text, facility_id) "
    "SELECT :revision_id, answer.key, answer.number, answer.text, answer.facility FROM unnest("
    "CAST(:keys AS varchar[]), CAST(:numbers AS double precision[]), CAST(:texts AS varchar[]), "
    "CAST(:facilities AS integer[])) AS answer(key, number, text, facility)"
)


def open_survey_for(session: Session, year: int, member_id: int) -> OpenSurvey:
    """Return the newest open survey of a year as a member answers it, built once per process."""
    found = session.execute(OPEN_DEFINITION, {"year": year}).first()
    if found is None:
        raise SurveyError(404, f"No survey is open for reporting year {year}.")
    # The database's address and the row's creation time tell apart equal ids in other databases.
    key = (str(session.get_bind().url), found.id, found.created_at)
    questions = _definitions.get(key)
    if questions is None:
        questions = detached(survey_questions(session, definition_id=found.id))
        _remember(_definitions, key, questions)
    facilities = (
        tuple(member_facilities(session, member_id=member_id, year=year))
        if has_repeats(questions)
        else ()
    )
    survey = _open_surveys.get((*key, facilities))
    if survey is None:
        survey = OpenSurvey.of(found.id, expand(questions, facilities))
        _remember(_open_surveys, (*key, facilities), survey)
    return survey


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep a value in a per-process cache of at most 256 entries."""
    if len(cache) >= 256:
        cache.clear()
    cache[key] = value


def _write_revision(
    session: Session, user: User, year: int, submission: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate and add a revision and its answers; return the body and the change to record."""
    assert user.member_id is not None  # only member accounts save surveys (require("member"))
    survey = open_survey_for(session, year, user.member_id)
    status = submission["status"]
    schema = survey.draft if status == "draft" else survey.submitted
    # A calculated answer is worked out below: what a client sent for it is not even checked.
    sent, calculated_keys = submission["answers"], survey.calculated_keys
    if calculated_keys and isinstance(sent, dict):
        sent = {k: v for k, v in sent.items() if k not in calculated_keys}
    try:
        answers = schema.load(sent)
    except ValidationError as error:
        raise SurveyError(
            422, "Some answers need correcting.", {"json": {"answers": error.messages}}
        ) from None
    stored = survey.calculate(schema.dump(answers))
    answers.update((key, stored[key]) for key in calculated_keys)
    broken = survey.rules and form_errors(survey.rules, stored, submitted=status != "draft")
    if broken:
        raise SurveyError(422, "Some answers need correcting.", {"json": {"answers": broken}})
    found = session.execute(LOCK_RESPONSE, {"member_id": user.member_id, "year": year}).first()
    now = utcnow()
    values = {"status": status, "definition_id": survey.definition_id, "updated_at": now}
    if found is None:
        number = 1
        response_id = session.scalar(
            ADD_RESPONSE,
            {"member_id": user.member_id, "year": year, "current_revision": number, **values},
        )
    else:
        number, response_id = found.current_revision + 1, found.id
        session.execute(
            BUMP_RESPONSE, {"response_id": response_id, "current_revision": number, **values}
        )
    revision = {
        "response_id": response_id,
        "number": number,
        "status": status,
        "answers": stored,
        "submitted_by": user.id,
    }
    revision_id = session.scalar(ADD_REVISION, revision)
    typed = _typed_answers(revision_id, survey.asked, answers)
    if typed:
        _add_answers(session, revision_id, typed)
    previous = found.status if found is not None else None
    topic = None
    if status == "submitted" or previous == "submitted":
        # Only accepted revisions are aggregated, so a save never changes a survey figure: a
        # submission (or a draft over one) changes only who responded. A response once accepted
        # keeps counting, with its accepted answers, until staff accept a newer revision.
        topic = "responses"
    change = {
        "actor_id": user.id,
        "action": f"survey.{status}",
        "object_type": "survey_response",
        "object_id": response_id,
        "details": {"year": year, "revision": number},
        "topic": topic,
        "reason": f"survey {year} {status}",
    }
    return _body(year, status, number, stored, now), change


def _typed_answers(
    revision_id: int, asked: tuple[Asked, ...], answers: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return answer rows with numbers as numbers, so SQL can aggregate them."""
    rows = []
    for question in asked:
        value = answers.get(question.key)
        if value is None or value == []:  # no choice made: no answer to count
            continue
        numeric = question.type in STORED_AS_NUMBER
        rows.append(
            {
                "revision_id": revision_id,
                "question_key": question.question_key,
                "value_number": float(value) if numeric else None,
                "value_text": None if numeric else _text(value),
                "facility_id": question.facility_id,
            }
        )
    return rows


def _add_answers(session: Session, revision_id: int, rows: list[dict[str, Any]]) -> None:
    """Insert a revision's typed answers in one statement."""
    if session.get_bind().dialect.name == "postgresql":
        columns = {
            "keys": [row["question_key"] for row in rows],
            "numbers": [row["value_number"] for row in rows],
            "texts": [row["value_text"] for row in rows],
            "facilities": [row["facility_id"] for row in rows],
        }
        session.execute(ADD_ANSWERS_UNNEST, {"revision_id": revision_id, **columns})
    else:
        # One multi-row VALUES (every row names every column), not one statement per row.
        session.execute(ADD_ANSWERS.values(rows))


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


def _body(
    year: int, status: str, revision: int, answers: dict[str, Any], updated_at: datetime
) -> dict[str, Any]:
    """Return the API representation of a response."""
    return {
        "year": year,
        "status": status,
        "revision": revision,
        "answers": answers,
        "updated_at": updated_at.isoformat(),
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


def _queue_decision_mail(
    session: Session, response: SurveyResponse, status: str, reason: str
) -> None:
    """Queue mail of the decision to the member's active accounts, in its transaction."""
    addresses = session.scalars(
        select(User.email).where(
            User.member_id == response.member_id, User.role == "member", User.is_active
        )
    )
    if status == "accepted":
        subject = f"Your {response.year} survey response was accepted"
        body = f"Staff accepted your survey response for {response.year}. Thank you."
    else:
        subject = f"Your {response.year} survey response was returned for correction"
        body = (
            f"Staff returned your survey response for {response.year} for correction.\n\n"
            f"Their message:\n{reason.strip()}\n\n"
            "Sign in, correct the response and submit it again."
        )
    for address in addresses:
        queue_mail(session, to=address, subject=subject, body=body, kind="decision")


def decide_response(
    session: Session,
    settings: Settings,
    *,
    response: SurveyResponse,
    staff: User,
    accept: bool,
    reason: str = "",
    revision: int | None = None,
) -> None:
    """Accept a submitted response (asking for re-aggregation) or return it for correction.

    revision is the one staff reviewed: if the member saved another since, nothing is decided.
    """
    if not accept and not reason.strip():
        raise SurveyError(
            422,
            "Write the member a message saying what to correct.",
            {"reason": ["Required when returning a response."]},
        )
    seen = response.current_revision if revision is None else revision
    status = "accepted" if accept else "rejected"
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if accept:
        values["accepted_revision"] = seen
    # One conditional update claims the decision, so two staff (or a member's new save)
    # racing it cannot both win.
    claimed = session.execute(
        update(SurveyResponse)
        .where(
            SurveyResponse.id == response.id,
            SurveyResponse.status == "submitted",
            SurveyResponse.current_revision == seen,
        )
        .values(**values)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(response)
        if response.status != "submitted":
            raise SurveyError(
                409, f"Only a submitted response can be decided; this one is {response.status}."
            )
        raise SurveyError(
            409,
            f"The member saved revision {response.current_revision} after the one you "
            f"reviewed ({seen}); review it again.",
        )
    _queue_decision_mail(session, response, status, reason)
    # Survey figures count accepted responses; the response rate counts submitted ones too,
    # so a return changes it.
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action=f"survey.{status}",
        object_type="survey_response",
        object_id=response.id,
        details={"year": response.year, "revision": seen, "reason": reason},
        topic="survey" if accept else "responses",
        reason=f"survey {response.year} {status}",
        year=response.year,
    )


def staff_message(session: Session, response_id: int) -> str:
    """Return the message staff wrote when they last returned a response for correction."""
    details = session.scalar(
        select(AuditLog.details)
        .where(
            AuditLog.action == "survey.rejected",
            AuditLog.object_type == "survey_response",
            AuditLog.object_id == str(response_id),
        )
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    return str(details.get("reason", "")) if details else ""
