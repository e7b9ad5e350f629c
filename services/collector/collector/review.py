"""Reviewing survey responses with context: filters, flags, last accepted, the year before."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from collector.surveys import SurveyError, decide_response
from outcomes.config import Settings
from outcomes.models import (
    MEMBERSHIP_CLASSES,
    RESPONSE_STATUSES,
    Member,
    SurveyResponse,
    SurveyRevision,
    User,
)
from outcomes.schemas import REPORTING_YEARS, Country


class ReviewFilterSchema(Schema):
    """Which responses staff list; a filter left empty filters nothing."""

    status = fields.String(validate=validate.OneOf([s for s in RESPONSE_STATUSES if s != "draft"]))
    year = fields.Integer(validate=REPORTING_YEARS)
    membership_class = fields.String(validate=validate.OneOf(MEMBERSHIP_CLASSES))
    country = Country()
    flagged = fields.String(validate=validate.OneOf(("yes", "no")))


def listed_responses(session: Session, filters: dict[str, Any]) -> list[Any]:
    """Return (response, member name, flags) rows matching the filters, waiting ones first."""
    query = (
        select(SurveyResponse, Member.name)
        .join(Member, Member.id == SurveyResponse.member_id)
        .where(SurveyResponse.status != "draft")
        .order_by((SurveyResponse.status != "submitted"), SurveyResponse.year.desc(), Member.name)
    )
    for name in ("status", "year"):
        if name in filters:
            query = query.where(getattr(SurveyResponse, name) == filters[name])
    for name in ("membership_class", "country"):
        if name in filters:
            query = query.where(getattr(Member, name) == filters[name])
    rows = list(session.execute(query))
    flags = answer_flags(session, [response.id for response, _ in rows])
    listed = [(response, name, flags.get(response.id, {})) for response, name in rows]
    if "flagged" in filters:
        listed = [row for row in listed if bool(row[2]) == (filters["flagged"] == "yes")]
    return listed


def answers_in_context(session: Session, response: SurveyResponse) -> list[dict[str, Any]]:
    """Return each question's answer now, in the last accepted revision and the year before."""
    now = _revision_answers(session, response.id, response.current_revision)
    accepted = _revision_answers(session, response.id, response.accepted_revision)
    before = session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.member_id == response.member_id,
            SurveyResponse.year == response.year - 1,
        )
    ).first()
    last_year = _revision_answers(session, before.id, before.accepted_revision) if before else {}
    flags = answer_flags(session, [response.id]).get(response.id, {})
    return [
        {
            "key": key,
            "now": now.get(key),
            "accepted": accepted.get(key),
            "changed": bool(accepted) and accepted.get(key) != now.get(key),
            "last_year": last_year.get(key),
            "flags": flags.get(key, []),
        }
        for key in sorted(set(now) | set(accepted) | set(last_year))
    ]


# The flag rules (README "Reviewing responses"). Against last year: a number more than
# LAST_YEAR_FACTOR times, or under 1/LAST_YEAR_FACTOR of, the member's accepted answer for the
# year before, or zero on one side only, or of the other sign. Against the other members: a
# robust z-score 0.6745 |x - median| / MAD above PEER_SCORE (Iglewicz and Hoaglin), over the
# accepted answers to that question that year, when at least PEER_MINIMUM other members gave
# one and their spread (MAD) is not zero.
LAST_YEAR_FACTOR = 3
PEER_SCORE = 3.5
PEER_MINIMUM = 5
FLAG_REASONS = ("last_year", "peers")
# Responses one bulk acceptance may name, by page or API.
BULK_LIMIT = 500
# Responses flagged per statement: well under every database's limit on bound parameters.
FLAG_BATCH = 1000

# k is an answer's key as the revision's answers hold it: a repeat's carries its facility, so each
# facility is compared with its own answer of the year before (outcomes.repeats), and with every
# other answer to its question that year (each facility's, for a repeat's).
ANSWER_FLAGS = text(
    """
    WITH target AS (
      SELECT r.id AS response_id, r.member_id, r.year, a.value_number AS v,
             a.question_key AS question,
             COALESCE(a.question_key || '@' || CAST(a.facility_id AS VARCHAR), a.question_key) AS k
      FROM survey_response r
      JOIN survey_revision rv ON rv.response_id = r.id AND rv.number = r.current_revision
      JOIN survey_answer a ON a.revision_id = rv.id
      JOIN survey_question q ON q.definition_id = r.definition_id AND q.key = a.question_key
      WHERE r.id IN :ids AND q.type IN ('integer', 'decimal') AND a.value_number IS NOT NULL
    ),
    accepted AS (
      SELECT r.member_id, r.year, a.value_number AS v,
             a.question_key AS question,
             COALESCE(a.question_key || '@' || CAST(a.facility_id AS VARCHAR), a.question_key) AS k
      FROM survey_response r
      JOIN survey_revision rv ON rv.response_id = r.id AND rv.number = r.accepted_revision
      JOIN survey_answer a ON a.revision_id = rv.id
      WHERE a.value_number IS NOT NULL
        AND EXISTS (SELECT 1 FROM target t
                    WHERE t.question = a.question_key AND r.year IN (t.year, t.year - 1))
    ),
    ranked AS (
      SELECT year, question, v,
             row_number() OVER (PARTITION BY year, question ORDER BY v) AS rn,
             count(*) OVER (PARTITION BY year, question) AS n
      FROM accepted
    ),
    middle AS (
      SELECT year, question, avg(v) AS med, max(n) AS n
      FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY year, question
    ),
    spread AS (
      SELECT r.year, r.question, abs(r.v - m.med) AS d, r.n,
             row_number() OVER (PARTITION BY r.year, r.question ORDER BY abs(r.v - m.med)) AS rn
      FROM ranked r JOIN middle m ON m.year = r.year AND m.question = r.question
    ),
    mad AS (
      SELECT year, question, avg(d) AS mad
      FROM spread WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY year, question
    )
    SELECT t.response_id, t.k,
           CASE WHEN p.v IS NULL THEN 0
                WHEN (t.v = 0) <> (p.v = 0) OR t.v * p.v < 0 THEN 1
                WHEN p.v <> 0 AND (abs(t.v) > :factor * abs(p.v)
                                   OR :factor * abs(t.v) < abs(p.v)) THEN 1
                ELSE 0 END AS last_year,
           CASE WHEN m.n - CASE WHEN own.v IS NULL THEN 0 ELSE 1 END >= :minimum
                     AND d.mad > 0 AND 0.6745 * abs(t.v - m.med) / d.mad > :score THEN 1
                ELSE 0 END AS peers
    FROM target t
    LEFT JOIN accepted p ON p.member_id = t.member_id AND p.year = t.year - 1 AND p.k = t.k
    LEFT JOIN accepted own ON own.member_id = t.member_id AND own.year = t.year AND own.k = t.k
    LEFT JOIN middle m ON m.year = t.year AND m.question = t.question
    LEFT JOIN mad d ON d.year = t.year AND d.question = t.question
    """
).bindparams(
    bindparam("ids", expanding=True),
    factor=LAST_YEAR_FACTOR,
    minimum=PEER_MINIMUM,
    score=PEER_SCORE,
)


def answer_flags(session: Session, response_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """Return, per response, its flagged questions' keys with the rules they break."""
    flags: dict[int, dict[str, list[str]]] = {}
    for start in range(0, len(response_ids), FLAG_BATCH):
        batch = response_ids[start : start + FLAG_BATCH]
        for row in session.execute(ANSWER_FLAGS, {"ids": batch}):
            broken = [reason for reason in FLAG_REASONS if getattr(row, reason)]
            if broken:
                flags.setdefault(row.response_id, {})[row.k] = broken
    return flags


def accept_many(
    session: Session, settings: Settings, *, staff: User, wanted: list[dict[str, int]]
) -> dict[str, list[Any]]:
    """Accept each response still at the revision staff saw and not flagged; say why not.

    Each acceptance is its own change (audit row, commit), so one that cannot be made
    leaves the others standing.
    """
    flags = answer_flags(session, [item["id"] for item in wanted])
    accepted: list[int] = []
    skipped: list[dict[str, Any]] = []
    for item in wanted:
        found = session.get(SurveyResponse, item["id"])
        if found is None:
            skipped.append({"id": item["id"], "reason": "No such survey response."})
            continue
        if item["id"] in flags:
            keys = ", ".join(sorted(flags[item["id"]]))
            skipped.append({"id": item["id"], "reason": f"Flagged ({keys}): review it alone."})
            continue
        try:
            decide_response(
                session,
                settings,
                response=found,
                staff=staff,
                accept=True,
                revision=item["revision"],
            )
        except SurveyError as refusal:
            session.rollback()
            skipped.append({"id": item["id"], "reason": refusal.message})
        else:
            accepted.append(item["id"])
    return {"accepted": accepted, "skipped": skipped}


def _revision_answers(session: Session, response_id: int, number: int | None) -> dict[str, Any]:
    if number is None:
        return {}
    answers = session.scalar(
        select(SurveyRevision.answers).where(
            SurveyRevision.response_id == response_id, SurveyRevision.number == number
        )
    )
    return answers or {}
