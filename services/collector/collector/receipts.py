"""The data receipt: which public indicators a member's answers feed, and whether they show."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from outcomes.catalogue import by_code
from outcomes.models import SurveyQuestion, SurveyResponse

AGGREGATION_WORDS = {
    "sum": "added up across members",
    "mean": "averaged across members",
    "median": "the median across members",
    "share_yes": "the share of members answering yes",
    "count": "counted across members",
}


@dataclass(frozen=True)
class ReceiptLine:
    """One public figure fed by the member's answers."""

    indicator: str
    title: str
    questions: str
    how: str
    contributors: int
    suppressed: bool


def data_receipt(
    session: Session, *, year: int, questions: list[SurveyQuestion], threshold: int
) -> list[ReceiptLine]:
    """List the indicators a year's answers feed and whether too few members contribute."""
    contributors = (
        session.scalar(
            select(func.count())
            .select_from(SurveyResponse)
            .where(SurveyResponse.year == year, SurveyResponse.accepted_revision.is_not(None))
        )
        or 0
    )
    suppressed = contributors < threshold
    catalogue = by_code()
    lines = []
    rate = catalogue.get("survey_response_rate")
    if rate is not None:
        # Who responded is public as a rate over all members, so it is never withheld.
        lines.append(
            ReceiptLine(
                rate.code, rate.title, "(your submission itself)", rate.rule, contributors, False
            )
        )
    for question in questions:
        if question.aggregation in {"none", ""}:
            continue
        code = f"survey_{question.key}"
        entry = catalogue.get(code)
        lines.append(
            ReceiptLine(
                code,
                entry.title if entry else question.label,
                question.label,
                AGGREGATION_WORDS.get(question.aggregation, question.aggregation),
                contributors,
                suppressed,
            )
        )
    return lines
