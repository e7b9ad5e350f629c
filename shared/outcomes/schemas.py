"""Marshmallow schemas shared by the web forms and the JSON API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from outcomes.models import SurveyQuestion

MEMBER_STATUSES = ("draft", "submitted")


class SurveySubmissionSchema(Schema):
    """The body of a member's survey PUT: answers by question key, and draft or submitted."""

    class Meta:
        unknown = RAISE

    status = fields.String(
        load_default="submitted",
        validate=validate.OneOf(MEMBER_STATUSES, error="Must be one of: {choices}."),
    )
    answers = fields.Dict(keys=fields.String(), required=True)


class SurveyResponseSchema(Schema):
    """A member's response for a reporting year as the API returns it."""

    year = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True)
    revision = fields.Integer(dump_only=True)
    answers = fields.Dict(dump_only=True)
    updated_at = fields.String(dump_only=True)


FIELD_TYPES: dict[str, type[fields.Field]] = {
    "integer": fields.Integer,
    "decimal": fields.Float,
    "boolean": fields.Boolean,
    "text": fields.String,
    "date": fields.Date,
    "select_one": fields.String,
}


def _field(question: SurveyQuestion, *, partial: bool) -> fields.Field:
    """Return the marshmallow field that validates one question."""
    checks: list[validate.Validator] = []
    if question.minimum is not None or question.maximum is not None:
        checks.append(
            validate.Range(
                min=question.minimum, max=question.maximum, error=_range_message(question)
            )
        )
    if question.type == "select_one":
        checks.append(validate.OneOf([c["name"] for c in question.choices]))
    if question.type == "text":
        checks.append(validate.Length(max=4000))
    extra: dict[str, Any] = {"strict": True} if question.type == "integer" else {}
    required = question.required and not partial
    return FIELD_TYPES[question.type](
        required=required, allow_none=not required, validate=checks, **extra
    )


def _range_message(question: SurveyQuestion) -> str:
    """Say in words which values a bounded question accepts."""
    low, high, unit = (
        question.minimum,
        question.maximum,
        f" {question.unit}" if question.unit else "",
    )
    if low is not None and high is not None:
        return f"Must be between {_number(low)} and {_number(high)}{unit}."
    if low is not None:
        return f"Must be at least {_number(low)}{unit}."
    return f"Must be at most {_number(high)}{unit}."


def _number(value: float | None) -> str:
    """Format a bound for a message a person reads."""
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def answers_schema(questions: Iterable[SurveyQuestion], *, partial: bool = False) -> Schema:
    """Build the schema of one survey definition; drafts (partial) may leave questions empty."""
    spec = {q.key: _field(q, partial=partial) for q in questions}
    return Schema.from_dict(spec, name="SurveyAnswers")(unknown=RAISE)


survey_submission_schema = SurveySubmissionSchema()
survey_response_schema = SurveyResponseSchema()
