"""Turning submitted HTML forms into the plain data our marshmallow schemas validate."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from outcomes.models import SurveyQuestion

FACILITY_ROWS = 5
CERTIFICATION_ROWS = 3


def _number(raw: str, kind: type) -> Any:
    """Return a typed number, or the raw text so the schema names what is wrong with it."""
    try:
        return kind(raw.replace(",", "")) if kind is int else kind(raw)
    except ValueError:
        return raw


def _rows(
    form: MultiDict, prefix: str, count: int, names: tuple[str, ...]
) -> tuple[list[dict], list[int]]:
    """Return the filled-in rows of a repeated group of inputs and the form row of each."""
    rows, positions = [], []
    for index in range(count):
        row = {name: form.get(f"{prefix}-{index}-{name}", "").strip() for name in names}
        if any(row.values()):
            rows.append(row)
            positions.append(index)
    return rows, positions


def row_errors(errors: dict[str, Any], positions: dict[str, list[int]]) -> dict[str, Any]:
    """Move the errors of filled-in rows back to the form rows they came from."""
    moved = dict(errors)
    for name, where in positions.items():
        if isinstance(errors.get(name), dict):
            moved[name] = {where[i]: messages for i, messages in errors[name].items()}
    return moved


def application_data(form: MultiDict) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """Return an application as ApplicationSchema takes it, and where its rows came from."""
    facilities, facility_rows = _rows(
        form, "facility", FACILITY_ROWS, ("name", "country", "people")
    )
    for facility in facilities:
        facility["people"] = _number(facility["people"], int) if facility["people"] else None
    certifications, certification_rows = _rows(
        form, "certification", CERTIFICATION_ROWS, ("name", "valid_until")
    )
    for held in certifications:
        held["valid_until"] = held["valid_until"] or None
    positions = {"facilities": facility_rows, "external_certifications": certification_rows}
    return {
        "organisation": form.get("organisation", "").strip(),
        "membership_class": form.get("membership_class", ""),
        "country": form.get("country", ""),
        "contact_name": form.get("contact_name", "").strip(),
        "contact_email": form.get("contact_email", "").strip(),
        "facilities": facilities,
        "external_certifications": certifications,
        "commitments": form.getlist("commitments"),
        "accepts_code_of_conduct": form.get("accepts_code_of_conduct") == "yes",
    }, positions


def survey_answers(questions: list[SurveyQuestion], form: MultiDict) -> dict[str, Any]:
    """Return a survey form's answers as the survey's answers_schema takes them."""
    answers: dict[str, Any] = {}
    for question in questions:
        if question.type == "select_many":
            chosen = form.getlist(question.key)
            if chosen:
                answers[question.key] = chosen
            continue
        raw = form.get(question.key, "").strip()
        if raw == "":
            continue
        if question.type == "integer":
            answers[question.key] = _number(raw, int)
        elif question.type == "decimal":
            answers[question.key] = _number(raw, float)
        elif question.type == "boolean":
            answers[question.key] = {"yes": True, "no": False}.get(raw, raw)
        else:
            answers[question.key] = raw
    return answers


def posted_values(questions: list[SurveyQuestion], form: MultiDict) -> dict[str, Any]:
    """Return what was posted, to show the form again as the member filled it in."""
    return {
        q.key: form.getlist(q.key) if q.type == "select_many" else form.get(q.key, "")
        for q in questions
    }


def form_values(answers: dict[str, Any]) -> dict[str, Any]:
    """Return stored answers as the text an HTML form shows."""
    shown: dict[str, Any] = {}
    for key, value in answers.items():
        if isinstance(value, bool):
            shown[key] = "yes" if value else "no"
        elif value is None:
            continue
        elif isinstance(value, list):
            shown[key] = value
        else:
            shown[key] = str(value)
    return shown


def question_data(form: MultiDict) -> dict[str, Any]:
    """Return a question form as QuestionSchema takes it; choices are 'name = label' lines."""
    choices = []
    for line in form.get("choices", "").splitlines():
        if line.strip():
            name, _, label = line.partition("=")
            choices.append({"name": name.strip(), "label": (label or name).strip()})
    # A blank field is a missing one: the schema then names what is required or uses its default.
    texts = {n: form.get(n, "").strip() for n in ("key", "label", "help_text", "type", "unit")}
    data: dict[str, Any] = {
        n: v for n, v in {**texts, "aggregation": form.get("aggregation", "")}.items() if v
    }
    for bound in ("minimum", "maximum"):
        raw = form.get(bound, "").strip()
        data[bound] = _number(raw, float) if raw else None
    return {**data, "required": form.get("required") == "yes", "choices": choices}


def question_values(question: SurveyQuestion | None) -> dict[str, Any]:
    """Return a stored question as the text its form shows."""
    if question is None:
        return {"aggregation": "none", "choices": ""}
    shown = {c: getattr(question, c) for c in ("key", "label", "help_text", "type", "unit")}
    for bound in ("minimum", "maximum"):
        value = getattr(question, bound)
        shown[bound] = "" if value is None else str(int(value) if value.is_integer() else value)
    lines = (f"{c['name']} = {c['label']}" for c in question.choices)
    return {
        **shown,
        "required": question.required,
        "aggregation": question.aggregation,
        "choices": "\n".join(lines),
    }
