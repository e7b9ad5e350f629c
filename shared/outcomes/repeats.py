"""Per-facility repeats: a repeat's questions are answered once for each of the member's facilities.

A question inside an XLSForm repeat names its repeat in `logic["repeat"]`. For a member it becomes
one question per facility, keyed `<question>@<facility id>`, whose rules read the same facility's
answers: both rule engines (collector.expressions and static/form-logic.js) then see a flat form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from outcomes.models import Facility, SurveyQuestion

SEPARATOR = "@"
# The parsed expressions of a question's logic (collector.expressions trees).
EXPRESSIONS = ("relevant", "constraint", "choice_filter", "calculate")


@dataclass(frozen=True)
class Asked:
    """One question as a member answers it: a form question, or a repeat's for one facility."""

    key: str  # the answer's key: the question's own, or <question>@<facility id> in a repeat
    question_key: str
    facility_id: int | None
    label: str
    help_text: str
    type: str
    unit: str
    minimum: float | None
    maximum: float | None
    required: bool
    choices: list[dict[str, Any]] = field(hash=False)
    aggregation: str
    logic: dict[str, Any] = field(hash=False)


def answer_key(question_key: str, facility_id: int | None) -> str:
    """Return the key of an answer: a repeat's answers carry their facility's id."""
    return question_key if facility_id is None else f"{question_key}{SEPARATOR}{facility_id}"


def member_facilities(session: Session, *, member_id: int, year: int) -> list[tuple[int, str]]:
    """Return (id, name) of the member's facilities still there on the reporting year's first day.

    As the indicators count a facility: one removed on a day is gone that day.
    """
    f = Facility.__table__.c
    rows = session.execute(
        select(f.id, f.name)
        .where(
            f.member_id == member_id,
            or_(f.removed_on.is_(None), f.removed_on > date(year, 1, 1)),
        )
        .order_by(f.name, f.id)
    )
    return [(row.id, row.name) for row in rows]


def detached(questions: Iterable[SurveyQuestion]) -> list[Asked]:
    """Return a definition's questions as plain values, kept after their session closes."""
    return [
        Asked(
            key=q.key,
            question_key=q.key,
            facility_id=None,
            label=q.label,
            help_text=q.help_text,
            type=q.type,
            unit=q.unit,
            minimum=q.minimum,
            maximum=q.maximum,
            required=q.required,
            choices=list(q.choices or []),
            aggregation=q.aggregation,
            logic=dict(q.logic or {}),
        )
        for q in questions
    ]


def has_repeats(questions: Iterable[Asked]) -> bool:
    """Tell whether any question sits in a repeat."""
    return any(q.logic.get("repeat") for q in questions)


def expand(questions: Sequence[Asked], facilities: Sequence[tuple[int, str]]) -> list[Asked]:
    """Return the questions a member answers: each repeat's block once per facility, in order."""
    asked: list[Asked] = []
    for repeat, run in groupby(questions, key=lambda q: q.logic.get("repeat") or ""):
        block = list(run)
        if not repeat:
            asked += block
            continue
        siblings = {q.key for q in block}
        asked += [_instance(q, siblings, facility) for facility in facilities for q in block]
    return asked


def _instance(question: Asked, siblings: set[str], facility: tuple[int, str]) -> Asked:
    """Return a repeat's question for one facility, its rules reading that facility's answers."""
    facility_id, name = facility
    logic = {**question.logic}
    for part in EXPRESSIONS:
        if part in logic:
            logic[part] = _rename(logic[part], siblings, facility_id)
    section = logic.get("section") or logic["repeat"]
    logic["section"] = f"{section}: {name}"[:300]
    if logic.get("labels"):
        logic["labels"] = {lang: f"{text} ({name})" for lang, text in logic["labels"].items()}
    return Asked(
        **{
            **question.__dict__,
            "key": answer_key(question.key, facility_id),
            "facility_id": facility_id,
            "label": f"{question.label} ({name})",
            "logic": logic,
        }
    )


def _rename(tree: list[Any], siblings: set[str], facility_id: int) -> list[Any]:
    """Return an expression with its references to the repeat's questions made the facility's."""
    if tree[0] == "ref" and tree[1] in siblings:
        return ["ref", answer_key(tree[1], facility_id)]
    return [
        _rename(part, siblings, facility_id) if isinstance(part, list) else part for part in tree
    ]
