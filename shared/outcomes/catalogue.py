"""The indicator catalogue: every published figure, its M&E question and its counting rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select

from outcomes import indicator_sql as sql

CATALOGUE_VERSION = "2026.11.1"

QUESTIONS = {
    1: "Are we doing what we said we would do?",
    2: "Are we doing things well?",
    3: "Are we making any difference, and to whom?",
    4: "Are these the right things to do?",
}


@dataclass(frozen=True)
class BuildContext:
    """What every indicator query may depend on besides the collected rows."""

    as_of: date


@dataclass(frozen=True)
class Indicator:
    """One published figure and how it is computed."""

    code: str
    title: str
    question: int
    source: str
    unit: str
    rule: str
    cells: Callable[[BuildContext], list[Select]]
    # Cells backed by fewer contributors than the threshold are withheld (member-reported data).
    disclosure_control: bool = False


CATALOGUE: tuple[Indicator, ...] = (
    Indicator(
        code="ps_certificates",
        title="Certificates issued against the Performance Standard",
        question=1,
        source="certification register",
        unit="certificates",
        rule=(
            "PS certificates issued up to the snapshot date, cumulative since the first; "
            "broken down into currently valid, full and provisional, and by facility country."
        ),
        cells=sql.certificate_cells("PS"),
    ),
    Indicator(
        code="coc_certificates",
        title="Certificates issued against the Chain of Custody Standard",
        question=1,
        source="certification register",
        unit="certificates",
        rule=(
            "CoC certificates issued up to the snapshot date, cumulative since the first; "
            "broken down into currently valid, full and provisional, and by facility country."
        ),
        cells=sql.certificate_cells("CoC"),
    ),
    Indicator(
        code="members_by_class",
        title="Members",
        question=1,
        source="membership register",
        unit="members",
        rule=(
            "Members active on the snapshot date, by membership class and country; "
            "yearly: members active at each year's end."
        ),
        cells=sql.member_cells,
    ),
    Indicator(
        code="survey_response_rate",
        title="Annual survey response rate",
        question=2,
        source="annual member survey",
        unit="%",
        rule=(
            "Members who submitted their survey for the reporting year (submitted or accepted) "
            "divided by members active during that year; the headline is the latest year."
        ),
        cells=sql.survey_response_cells,
    ),
)


def by_code() -> dict[str, Indicator]:
    """Return the catalogue keyed by indicator code."""
    return {indicator.code: indicator for indicator in CATALOGUE}
