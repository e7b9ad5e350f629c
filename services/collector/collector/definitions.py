"""Survey definitions: import from XLSForm (pyxform), copy the previous year, open, close."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from pyxform.errors import PyXFormError
from pyxform.xls2json import parse_file_to_json
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

# XLSForm types we render, and the question type each becomes.
XLSFORM_TYPES = {
    "integer": "integer",
    "decimal": "decimal",
    "text": "text",
    "date": "date",
    "select one": "select_one",
    "select all that apply": "select_many",
}
# Columns of the form's "survey" sheet that pyxform keeps and that we do not render.
UNRENDERED_BINDS = ("relevant", "calculate", "readonly", "required_message")
BOUND = re.compile(r"^\s*\.\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
STATUSES = {"open": ("draft", "closed"), "closed": ("open",)}
NUMERIC_TYPES = ("integer", "decimal")


class DefinitionError(Exception):
    """A definition cannot be created or changed as asked."""


@dataclass
class ImportReport:
    """What an XLSForm import made of each row: questions, and what was left out and why."""

    questions: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_xlsform(data: bytes, filename: str) -> ImportReport:
    """Turn an XLSForm workbook into our questions and a list of what we do not render."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in {".xlsx", ".xls", ".csv", ".md"}:
        raise DefinitionError("Upload an XLSForm as .xlsx (or .xls, .csv).")
    warnings: list[str] = []
    with tempfile.NamedTemporaryFile(suffix=suffix) as workbook:
        workbook.write(data)
        workbook.flush()
        try:
            form = parse_file_to_json(workbook.name, warnings=warnings)
        except PyXFormError as error:
            raise DefinitionError(f"This is not an XLSForm pyxform can read: {error}") from None
        except Exception as error:  # a corrupt workbook fails inside openpyxl/xlrd in many ways
            raise DefinitionError(f"This workbook could not be read: {error}") from None
    report = ImportReport(warnings=warnings)
    _collect(form.get("children", []), report, path="")
    if not report.questions:
        raise DefinitionError("The form has no question we can render; see the import report.")
    return report


def _collect(children: list[dict[str, Any]], report: ImportReport, *, path: str) -> None:
    """Add each child as a question, or say in the report why it was left out."""
    for child in children:
        kind, name = child.get("type", ""), child.get("name", "")
        where = f"{path}{name}"
        if kind == "group" and name == "meta":
            continue  # pyxform's own instanceID: not a question
        if kind == "group":
            report.warnings.append(f"group '{where}': its questions are shown without the group")
            _collect(child.get("children", []), report, path=f"{where}/")
            continue
        if kind == "repeat":
            inner = ", ".join(c.get("name", "") for c in child.get("children", []))
            report.unsupported.append(f"repeat '{where}' (with {inner}): repeats are not rendered")
            continue
        if kind not in XLSFORM_TYPES:
            report.unsupported.append(f"'{where}' of type '{kind}' is not rendered")
            continue
        report.questions.append(_question(child, report, where))


def _question(child: dict[str, Any], report: ImportReport, where: str) -> dict[str, Any]:
    """Return one question's fields from an XLSForm row."""
    bind = child.get("bind", {})
    minimum = maximum = None
    constraint = bind.get("constraint")
    if constraint:
        for part in re.split(r"\s+and\s+", constraint):
            matched = BOUND.match(part)
            if matched is None:
                report.unsupported.append(
                    f"'{where}': constraint '{constraint}' is not rendered (only bounds such as "
                    "'. >= 0 and . <= 100' are)"
                )
                minimum = maximum = None
                break
            operator, number = matched.group(1), float(matched.group(2))
            if operator.startswith(">"):
                minimum = number
            else:
                maximum = number
    for name in UNRENDERED_BINDS:
        if bind.get(name):
            report.unsupported.append(f"'{where}': {name} '{bind[name]}' is not applied")
    # Our own optional columns: pyxform keeps columns it does not know on the row.
    aggregation = str(child.get("aggregation") or "none").strip()
    if aggregation not in AGGREGATIONS:
        report.unsupported.append(
            f"'{where}': aggregation '{aggregation}' is not one of {', '.join(AGGREGATIONS)}; "
            "the question feeds no public figure"
        )
        aggregation = "none"
    kind = XLSFORM_TYPES[child["type"]]
    fits = {"sum": NUMERIC_TYPES, "mean": NUMERIC_TYPES, "median": NUMERIC_TYPES}
    if (aggregation in fits and kind not in fits[aggregation]) or (
        aggregation == "share_yes" and kind != "boolean"
    ):
        report.unsupported.append(
            f"'{where}': a {kind} question cannot aggregate as '{aggregation}'; "
            "the question feeds no public figure (use 'count')"
        )
        aggregation = "none"
    label = child.get("label") or child.get("name")
    if isinstance(label, dict):  # several languages: take the first
        label = next(iter(label.values()))
    hint = child.get("hint") or ""
    if isinstance(hint, dict):
        hint = next(iter(hint.values()))
    return {
        "key": child["name"][:60],
        "label": str(label)[:300],
        "help_text": str(hint)[:1000],
        "type": kind,
        "minimum": minimum,
        "maximum": maximum,
        "required": str(bind.get("required", "")).lower() in {"yes", "true", "true()"},
        "choices": [
            {"name": c["name"], "label": _text(c.get("label", c["name"]))}
            for c in child.get("choices", [])
        ],
        "aggregation": aggregation,
        "unit": str(child.get("unit") or "")[:40],
    }


def _text(value: Any) -> str:
    return str(next(iter(value.values()))) if isinstance(value, dict) else str(value)


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
    questions = [_columns(q) for q in survey_questions(session, definition_id=previous.id)]
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


class ChoiceSchema(Strict):
    """One choice of a select question: the stored name and the label members see."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=60), NAME])
    label = fields.String(required=True, validate=validate.Length(min=1, max=300))


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
    """Add a question (loaded by QuestionSchema) to a draft, or change one; refuse a taken key."""
    _draft(definition)
    clash = session.scalar(
        select(SurveyQuestion.id).where(
            SurveyQuestion.definition_id == definition.id,
            SurveyQuestion.key == loaded["key"],
            SurveyQuestion.id != (question.id if question else 0),
        )
    )
    if clash is not None:
        raise ValidationError(
            {"key": [f"This survey already asks a question keyed {loaded['key']}."]}
        )
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
