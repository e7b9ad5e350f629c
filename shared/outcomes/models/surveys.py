"""Survey definitions (questions as data) and members' responses with every revision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.models.base import Base, created_at

QUESTION_TYPES = ("integer", "decimal", "boolean", "text", "date", "select_one")
AGGREGATIONS = ("sum", "mean", "median", "share_yes", "count", "none")
RESPONSE_STATUSES = ("draft", "submitted", "accepted", "rejected")


class SurveyDefinition(Base):
    """The questionnaire of one reporting year, versioned."""

    __tablename__ = "survey_definition"
    __table_args__ = (UniqueConstraint("year", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    version: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft, open, closed
    created_at: Mapped[datetime] = created_at()


class SurveyQuestion(Base):
    """One question: its type, bounds and how the public indicator aggregates it."""

    __tablename__ = "survey_question"
    __table_args__ = (UniqueConstraint("definition_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("survey_definition.id"))
    position: Mapped[int]
    key: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(300))
    help_text: Mapped[str] = mapped_column(String(1000), default="")
    type: Mapped[str] = mapped_column(String(12))
    unit: Mapped[str] = mapped_column(String(40), default="")
    minimum: Mapped[float | None] = mapped_column(Float)
    maximum: Mapped[float | None] = mapped_column(Float)
    required: Mapped[bool] = mapped_column(default=False)
    choices: Mapped[list] = mapped_column(default=list)
    aggregation: Mapped[str] = mapped_column(String(12), default="none")
    # From an XLSForm: section, relevant/constraint/choice_filter as parsed trees (see
    # collector.expressions), their messages, default, and labels and hints by language.
    logic: Mapped[dict] = mapped_column(default=dict, server_default="{}")


class SurveyResponse(Base):
    """A member's response for a reporting year; its content lives in revisions."""

    __tablename__ = "survey_response"
    __table_args__ = (UniqueConstraint("member_id", "year"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    year: Mapped[int]
    definition_id: Mapped[int] = mapped_column(ForeignKey("survey_definition.id"))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    current_revision: Mapped[int] = mapped_column(default=0)
    # The revision staff accepted last: the only one aggregation reads, whatever came after it.
    accepted_revision: Mapped[int | None]
    updated_at: Mapped[datetime] = created_at()


class SurveyRevision(Base):
    """One saved version of a response; never changed after it is written."""

    __tablename__ = "survey_revision"
    __table_args__ = (UniqueConstraint("response_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_response.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(10))
    answers: Mapped[dict]
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = created_at()


class SurveyAnswer(Base):
    """One answer of one revision, typed for aggregation in SQL."""

    __tablename__ = "survey_answer"
    __table_args__ = (Index("ix_survey_answer_revision_key", "revision_id", "question_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("survey_revision.id"))
    question_key: Mapped[str] = mapped_column(String(60))
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String(4000))
    # The facility a per-facility repeat's answer is about; None for the form's other questions.
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facility.id"))


class IdempotencyRecord(Base):
    """The answer given to a request carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("user_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[dict]
    created_at: Mapped[datetime] = created_at()
