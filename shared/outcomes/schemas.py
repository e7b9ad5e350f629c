"""Marshmallow schemas shared by the web forms and the JSON API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pycountry
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from outcomes.models import MEMBERSHIP_CLASSES, SurveyQuestion
from outcomes.repeats import Asked

MEMBER_STATUSES = ("draft", "submitted")
# The reporting years a survey may have (the database's INTEGER would take far more).
REPORTING_YEARS = validate.Range(
    min=2000, max=2100, error="Give a reporting year between {min} and {max}."
)


def _most(field: fields.Field) -> int:
    """Return the smallest maximum length among a field's validators."""
    limits = [v.max for v in field.validators if isinstance(v, validate.Length) and v.max]
    if not limits:
        raise TypeError(f"{type(field).__name__} needs validate=Length(max=...)")
    return min(limits)


class BoundedList(fields.List):
    """A list whose Length(max) is checked before its items are read (250,000 items: 7 s)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.most = _most(self)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, list) and len(value) > self.most:
            raise ValidationError(f"Give at most {self.most} items.")
        return super()._deserialize(value, attr, data, **kwargs)


class BoundedDict(fields.Dict):
    """A mapping whose Length(max) is checked before its entries are read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.most = _most(self)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict) and len(value) > self.most:
            raise ValidationError(f"Give at most {self.most} entries.")
        return super()._deserialize(value, attr, data, **kwargs)


# A question's key, or a per-facility repeat's <question>@<facility id> (outcomes.repeats).
KEY = fields.String(validate=validate.Length(max=80))


class SurveySubmissionSchema(Schema):
    """The body of a member's survey PUT: answers by question key, and draft or submitted."""

    class Meta:
        unknown = RAISE

    status = fields.String(
        load_default="submitted",
        validate=validate.OneOf(MEMBER_STATUSES, error="Must be one of: {choices}."),
    )
    # A repeat's questions are answered once per facility: room for 500 facilities' answers.
    answers = BoundedDict(keys=KEY, required=True, validate=validate.Length(max=20_000))


class SurveyResponseSchema(Schema):
    """A member's response for a reporting year as the API returns it."""

    year = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True)
    revision = fields.Integer(dump_only=True)
    answers = fields.Dict(dump_only=True)
    updated_at = fields.String(dump_only=True)
    staff_message = fields.String(
        dump_only=True, metadata={"description": "Why staff returned it for correction."}
    )


class AskedQuestionSchema(Schema):
    """A question as the signed-in member answers it (a repeat's once for each facility)."""

    key = fields.String(
        dump_only=True, metadata={"description": "The key of its answer in a survey PUT."}
    )
    question_key = fields.String(dump_only=True)
    facility_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The facility a per-facility repeat's question is about."},
    )
    label = fields.String(dump_only=True)
    help_text = fields.String(dump_only=True)
    type = fields.String(dump_only=True)
    unit = fields.String(dump_only=True)
    minimum = fields.Float(dump_only=True, allow_none=True)
    maximum = fields.Float(dump_only=True, allow_none=True)
    required = fields.Boolean(dump_only=True)
    choices = fields.List(fields.Dict(), dump_only=True)
    section = fields.Function(lambda q: q.logic.get("section", ""), dump_only=True)


# The largest number an answer may be: a double holds it, and sums of many of them stay finite.
LARGEST = 1e15
TOO_LARGE = "Enter a number between -1,000,000,000,000,000 and 1,000,000,000,000,000."
FIELD_TYPES: dict[str, type[fields.Field]] = {
    "integer": fields.Integer,
    "decimal": fields.Float,
    "boolean": fields.Boolean,
    "text": fields.String,
    "date": fields.Date,
    "select_one": fields.String,
}


# What a member reads when an answer is refused: what to do, not what the parser expected.
ANSWER = "Answer this question."
CHOOSE = "Choose one of the choices offered."
PLAIN = {
    "integer": "Enter a whole number, for example 12.",
    "decimal": "Enter a number, for example 12.5.",
    "date": "Enter a date as year-month-day, for example 2025-03-31.",
    "boolean": "Choose yes or no.",
    "text": "Enter the answer as text.",
    "select_one": CHOOSE,
}


def _field(question: SurveyQuestion | Asked, *, partial: bool) -> fields.Field:
    """Return the marshmallow field that validates one question."""
    checks: list[validate.Validator] = []
    if question.type in ("integer", "decimal"):
        # Past a double's range an integer cannot be stored (nor summed) as a number at all.
        checks.append(validate.Range(min=-LARGEST, max=LARGEST, error=TOO_LARGE))
    if question.minimum is not None or question.maximum is not None:
        checks.append(
            validate.Range(
                min=question.minimum, max=question.maximum, error=_range_message(question)
            )
        )
    if question.type == "select_one":
        checks.append(validate.OneOf([c["name"] for c in question.choices], error=CHOOSE))
    if question.type == "text":
        checks.append(validate.Length(max=4000, error="Keep the answer under 4,000 characters."))
    # A rule-bound question's required is checked with its rules (collector.expressions).
    logic = question.logic or {}
    ruled = logic.get("relevant") is not None or bool(logic.get("required_message"))
    required = question.required and not partial and not ruled
    if question.type == "select_many":
        # Several choices; XLSForm's select_multiple (the name is cut to fit the type column).
        names = [c["name"] for c in question.choices]
        return BoundedList(
            fields.String(validate=validate.OneOf(names, error=CHOOSE)),
            required=required,
            allow_none=not required,
            # An empty choice answers nothing: required means at least one choice.
            validate=[
                validate.Length(min=1 if required else 0, error="Choose at least one."),
                validate.Length(max=max(len(names), 1)),
            ],
        )
    extra: dict[str, Any] = {"strict": True} if question.type == "integer" else {}
    messages = {"required": ANSWER, "null": ANSWER, "invalid": PLAIN.get(question.type, "")}
    return FIELD_TYPES[question.type](
        required=required,
        allow_none=not required,
        validate=checks,
        error_messages={k: v for k, v in messages.items() if v},
        **extra,
    )


def _range_message(question: SurveyQuestion | Asked) -> str:
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


def answers_schema(questions: Iterable[SurveyQuestion | Asked], *, partial: bool = False) -> Schema:
    """Build the schema of one survey definition; drafts (partial) may leave questions empty."""
    spec = {q.key: _field(q, partial=partial) for q in questions}
    return Schema.from_dict(spec, name="SurveyAnswers")(unknown=RAISE)


def validate_country(code: str) -> None:
    """Accept an ISO 3166-1 alpha-2 country code, as pycountry knows them."""
    if not isinstance(code, str) or len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError(f"{code!r} is not an ISO 3166-1 two-letter country code (e.g. DE).")


def country_name(code: str) -> str:
    """Return a country's English name for display (the code itself if unknown)."""
    country = pycountry.countries.get(alpha_2=code)
    return country.name if country else code


def countries() -> list[tuple[str, str]]:
    """Return (code, name) of every ISO 3166-1 country, by name."""
    return sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda pair: pair[1])


COMMITMENTS = (
    "Work towards certification against the Performance Standard",
    "Report each year through the annual member survey",
    "Take part in the standard's public consultations",
)


class Strict(Schema):
    """A schema that refuses fields it does not know."""

    class Meta:
        unknown = RAISE


class Country(fields.String):
    """An ISO 3166-1 alpha-2 code; lower case is accepted and stored upper case."""

    def __init__(self, **kwargs: Any) -> None:
        # Listed in the OpenAPI document, so clients (and schemathesis) know the valid codes.
        codes = sorted(country.alpha_2 for country in pycountry.countries)
        kwargs.setdefault("metadata", {"enum": codes})
        kwargs.setdefault("validate", validate.Length(max=2))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        validate_country(code)
        return code


class FacilityInputSchema(Strict):
    """A facility an applicant operates."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    country = Country(required=True)
    people = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=10_000_000)
    )


class ExternalCertificationHeldSchema(Strict):
    """An external certification an applicant holds."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    valid_until = fields.Date(load_default=None, allow_none=True)


class ApplicationSchema(Strict):
    """A membership application, as the public form and POST /api/v1/applications take it."""

    organisation = fields.String(required=True, validate=validate.Length(min=2, max=200))
    membership_class = fields.String(
        required=True,
        validate=validate.OneOf(MEMBERSHIP_CLASSES, error="Must be one of: {choices}."),
    )
    country = Country(required=True)
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    contact_email = fields.Email(required=True, validate=validate.Length(max=254))
    facilities = BoundedList(
        fields.Nested(FacilityInputSchema), load_default=list, validate=validate.Length(max=500)
    )
    external_certifications = BoundedList(
        fields.Nested(ExternalCertificationHeldSchema),
        load_default=list,
        validate=validate.Length(max=50),
    )
    commitments = BoundedList(
        fields.String(validate=validate.OneOf(COMMITMENTS, error="Not one of our commitments.")),
        load_default=list,
        validate=validate.Length(max=len(COMMITMENTS)),
    )
    accepts_code_of_conduct = fields.Boolean(
        required=True,
        validate=validate.Equal(True, error="Applicants must accept the Code of Conduct."),
    )


class ApplicationReceiptSchema(Schema):
    """What an applicant gets back: the reference to quote."""

    reference = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    organisation = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class DecisionSchema(Strict):
    """A staff decision on an application or a survey response."""

    decision = fields.String(required=True, validate=validate.OneOf(("approve", "reject")))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def _reason_for_rejection(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data["decision"] == "reject" and not data.get("reason", "").strip():
            raise ValidationError("Give the reason for a rejection.", "reason")


application_schema = ApplicationSchema()
survey_submission_schema = SurveySubmissionSchema()
survey_response_schema = SurveyResponseSchema()
