"""Survey definitions: create, copy the previous year, edit a draft, open, close."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.changes import record_change
from outcomes.config import Settings
from outcomes.models import (
    AGGREGATIONS,
    QUESTION_TYPES,
    SurveyDefinition,
    SurveyQuestion,
    User,
)
from outcomes.queries import survey_questions
from outcomes.schemas import REPORTING_YEARS, BoundedList, Strict

STATUSES = {"open": ("draft", "closed"), "closed": ("open",)}
NUMERIC_TYPES = ("integer", "decimal")
# A repeat's question is published as each member's total over its facilities (outcomes.repeats).
PER_FACILITY_AGGREGATIONS = ("sum", "none")


class DefinitionError(Exception):
    """A definition cannot be created or changed as asked."""


def _check_year(year: int) -> None:
    try:
        REPORTING_YEARS(year)
    except ValidationError as error:
        raise DefinitionError(str(error.messages[0])) from error


def _next_version(session: Session, year: int) -> int:
    latest = session.scalar(
        select(func.max(SurveyDefinition.version)).where(SurveyDefinition.year == year)
    )
    return (latest or 0) + 1


def create_definition(
    session: Session,
    settings: Settings,
    *,
    year: int,
    title: str,
    questions: list[dict[str, Any]],
    staff: User,
    source: str,
) -> SurveyDefinition:
    """Record a draft definition (the next version for the year) with its questions."""
    _check_year(year)
    if not title.strip():
        raise DefinitionError("Give the survey a title.")
    definition = SurveyDefinition(
        year=year, version=_next_version(session, year), title=title.strip()[:200], status="draft"
    )
    session.add(definition)
    session.flush()
    session.add_all(
        SurveyQuestion(definition_id=definition.id, position=i, **q)
        for i, q in enumerate(questions)
    )
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="survey_definition.create",
        object_type="survey_definition",
        object_id=definition.id,
        details={"year": year, "version": definition.version, "source": source},
    )
    return definition


def copy_previous_year(
    session: Session, settings: Settings, *, year: int, staff: User
) -> SurveyDefinition:
    """Start a year's draft from the newest definition of the year before."""
    _check_year(year)  # before any query: PostgreSQL refuses a year past INTEGER with a 500
    previous = session.scalars(
        select(SurveyDefinition)
        .where(SurveyDefinition.year == year - 1)
        .order_by(SurveyDefinition.version.desc())
        .limit(1)
    ).first()
    if previous is None:
        raise DefinitionError(f"There is no {year - 1} survey to start from.")
    questions = [
        {**_columns(q), "logic": q.logic}
        for q in survey_questions(session, definition_id=previous.id)
    ]
    title = previous.title.replace(str(year - 1), str(year))
    return create_definition(
        session,
        settings,
        year=year,
        title=title,
        questions=questions,
        staff=staff,
        source=f"copy of definition {previous.id}",
    )


def set_status(
    session: Session, settings: Settings, definition: SurveyDefinition, *, status: str, staff: User
) -> None:
    """Open a draft or closed definition, or close an open one."""
    if definition.status not in STATUSES.get(status, ()):
        raise DefinitionError(f"A {definition.status} survey cannot be made {status}.")
    definition.status = status
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action=f"survey_definition.{status}",
        object_type="survey_definition",
        object_id=definition.id,
        details={"year": definition.year, "version": definition.version},
    )


# What staff may give a question; select_many is XLSForm's select_multiple.
EDITABLE_TYPES = (*QUESTION_TYPES, "select_many")
QUESTION_COLUMNS = (
    "key",
    "label",
    "help_text",
    "type",
    "unit",
    "minimum",
    "maximum",
    "required",
    "choices",
    "aggregation",
)
NAME = validate.Regexp(
    r"^[a-z][a-z0-9_]*$",
    error="Use lower-case letters, digits and _, starting with a letter (e.g. water_use).",
)


CHOICE_NAME = validate.Regexp(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
    error="Use letters, digits, _, - and ., starting with a letter, digit or _ (e.g. yes or 1).",
)


def not_formula(text: str) -> None:
    """Refuse text a spreadsheet would run as a formula when it reaches a public CSV."""
    if text[:1] in ("=", "+", "@", "\t", "\r") or re.match(r"-[^\d\s]", text):
        raise ValidationError("Start with a letter or digit, not =, +, - or @ (a formula).")


class ChoiceSchema(Strict):
    """One choice of a select question: the stored name and the label members see."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=60), CHOICE_NAME])
    label = fields.String(required=True, validate=[validate.Length(min=1, max=300), not_formula])


class QuestionSchema(Strict):
    """A survey question as staff write it; checks that its parts fit together."""

    key = fields.String(required=True, validate=[validate.Length(min=1, max=60), NAME])
    label = fields.String(required=True, validate=validate.Length(min=1, max=300))
    help_text = fields.String(load_default="", validate=validate.Length(max=1000))
    type = fields.String(required=True, validate=validate.OneOf(EDITABLE_TYPES))
    unit = fields.String(load_default="", validate=validate.Length(max=40))
    minimum = fields.Float(load_default=None, allow_none=True, allow_nan=False)
    maximum = fields.Float(load_default=None, allow_none=True, allow_nan=False)
    required = fields.Boolean(load_default=False)
    choices = BoundedList(
        fields.Nested(ChoiceSchema), load_default=list, validate=validate.Length(max=200)
    )
    aggregation = fields.String(load_default="none", validate=validate.OneOf(AGGREGATIONS))

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        kind, how = data.get("type"), data.get("aggregation")
        low, high = data.get("minimum"), data.get("maximum")
        if low is not None and high is not None and high < low:
            errors["maximum"] = [f"The maximum ({high:g}) is below the minimum ({low:g})."]
        if (low is not None or high is not None) and kind not in NUMERIC_TYPES:
            errors["minimum"] = ["Only integer and decimal questions have bounds."]
        selecting = kind in ("select_one", "select_many")
        names = [c["name"] for c in data.get("choices", [])]
        if selecting and not names:
            errors["choices"] = ["A select question needs at least one choice."]
        elif not selecting and names:
            errors["choices"] = ["Only select questions have choices."]
        elif len(set(names)) != len(names):
            errors["choices"] = ["Each choice needs a name of its own."]
        if how in ("sum", "mean", "median") and kind not in NUMERIC_TYPES:
            errors["aggregation"] = [f"Only integer and decimal answers have a {how}."]
        if how == "share_yes" and kind != "boolean":
            errors["aggregation"] = ["Only a yes/no question has a share of yes."]
        if errors:
            raise ValidationError(errors)


question_schema = QuestionSchema()


def _draft(definition: SurveyDefinition) -> None:
    """Refuse to change the questions of a survey members may already have answered."""
    if definition.status != "draft":
        raise DefinitionError(
            f"The {definition.year} survey (version {definition.version}) is {definition.status}: "
            "its questions can change only while it is a draft. Import a new version or copy it "
            "into next year's draft instead."
        )


def save_question(
    session: Session,
    settings: Settings,
    definition: SurveyDefinition,
    loaded: dict[str, Any],
    *,
    staff: User,
    question: SurveyQuestion | None = None,
) -> SurveyQuestion:
    """Add a question (loaded by QuestionSchema) to a draft, or change one, if it fits."""
    _draft(definition)
    clash = session.scalar(
        select(SurveyQuestion.id).where(
            SurveyQuestion.definition_id == definition.id,
            SurveyQuestion.key == loaded["key"],
            SurveyQuestion.id != (question.id if question else 0),
        )
    )
    errors: dict[str, list[str]] = {}
    if clash is not None:
        errors["key"] = [f"This survey already asks a question keyed {loaded['key']}."]
    repeat = (question.logic or {}).get("repeat") if question is not None else None
    if repeat and loaded.get("aggregation", "none") not in PER_FACILITY_AGGREGATIONS:
        errors["aggregation"] = [
            f"A question answered per facility (repeat {repeat}) is published as each member's "
            "total over its facilities: choose sum or none."
        ]
    if errors:
        raise ValidationError(errors)
    before = _columns(question) if question else {}
    if question is None:
        last = session.scalar(
            select(func.max(SurveyQuestion.position)).where(
                SurveyQuestion.definition_id == definition.id
            )
        )
        question = SurveyQuestion(definition_id=definition.id, position=(last or 0) + 1)
        session.add(question)
    for column, value in loaded.items():
        setattr(question, column, value)
    session.flush()
    after = _columns(question)
    changed = [c for c in QUESTION_COLUMNS if before.get(c) != after[c]]
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="survey_question.update" if before else "survey_question.create",
        object_type="survey_definition",
        object_id=definition.id,
        details={
            "key": question.key,
            "before": {c: before[c] for c in changed if c in before},
            "after": {c: after[c] for c in changed},
        },
    )
    return question


def remove_question(
    session: Session,
    settings: Settings,
    definition: SurveyDefinition,
    question: SurveyQuestion,
    *,
    staff: User,
) -> None:
    """Take a question out of a draft survey."""
    _draft(definition)
    before = _columns(question)
    session.delete(question)
    record_change(
        session,
        settings,
        actor_id=staff.id,
        action="survey_question.delete",
        object_type="survey_definition",
        object_id=definition.id,
        details={"key": question.key, "before": before},
    )


def _columns(question: SurveyQuestion) -> dict[str, Any]:
    return {c: getattr(question, c) for c in QUESTION_COLUMNS}
