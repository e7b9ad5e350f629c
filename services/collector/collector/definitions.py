"""Survey definitions: import from XLSForm (pyxform), copy the previous year, open, close."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any

from pyxform.errors import PyXFormError
from pyxform.xls2json import parse_file_to_json
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outcomes.models import AGGREGATIONS, AuditLog, SurveyDefinition, SurveyQuestion, User
from outcomes.queries import survey_questions

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
        "type": XLSFORM_TYPES[child["type"]],
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
    if not 2000 <= year <= 2100:
        raise DefinitionError("Give a reporting year between 2000 and 2100.")


def _next_version(session: Session, year: int) -> int:
    latest = session.scalar(
        select(func.max(SurveyDefinition.version)).where(SurveyDefinition.year == year)
    )
    return (latest or 0) + 1


def create_definition(
    session: Session,
    *,
    year: int,
    title: str,
    questions: list[dict[str, Any]],
    staff: User,
    source: str,
) -> SurveyDefinition:
    """Add a draft definition (the next version for the year) with its questions."""
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
    session.add(
        AuditLog(
            actor_id=staff.id,
            action="survey_definition.create",
            object_type="survey_definition",
            object_id=str(definition.id),
            details={"year": year, "version": definition.version, "source": source},
        )
    )
    return definition


def copy_previous_year(session: Session, *, year: int, staff: User) -> SurveyDefinition:
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
    columns = (
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
    questions = [
        {c: getattr(q, c) for c in columns}
        for q in survey_questions(session, definition_id=previous.id)
    ]
    title = previous.title.replace(str(year - 1), str(year))
    return create_definition(
        session,
        year=year,
        title=title,
        questions=questions,
        staff=staff,
        source=f"copy of definition {previous.id}",
    )


def set_status(session: Session, definition: SurveyDefinition, *, status: str, staff: User) -> None:
    """Open a draft or closed definition, or close an open one."""
    if definition.status not in STATUSES.get(status, ()):
        raise DefinitionError(f"A {definition.status} survey cannot be made {status}.")
    definition.status = status
    session.add(
        AuditLog(
            actor_id=staff.id,
            action=f"survey_definition.{status}",
            object_type="survey_definition",
            object_id=str(definition.id),
            details={"year": definition.year, "version": definition.version},
        )
    )
