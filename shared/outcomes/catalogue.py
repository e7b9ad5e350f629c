"""The indicator catalogue: every published figure, its M&E question and its counting rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Select, select

from outcomes import indicator_sql as sql
from outcomes.models import SurveyDefinition, SurveyQuestion

CATALOGUE_VERSION = "2026.11.2"
SURVEY_PREFIX = "survey_"
# What an outbox row says changed; a run whose requests all name topics recomputes only the
# indicators that read them. Any other topic (the default "aggregate") means everything.
# "responses": which members responded changed, but no accepted answer did (a new submission);
# "survey": accepted answers changed (an acceptance, or an accepted response amended).
TOPICS = frozenset(
    (
        "certification",
        "membership",
        "firms",
        "training",
        "governance",
        "applications",
        "survey",
        "responses",
    )
)

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
    # Cell key perturbation of member-reported cells; off only in tests that need exact values.
    perturb: bool = True
    # The reporting years whose survey answers a run reads (None: every year); see build.py.
    survey_years: frozenset[int] | None = None


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
    # The topics (kinds of collected data) the indicator reads.
    sources: frozenset[str] = TOPICS
    # Survey-derived indicators name the question they aggregate and how.
    survey_question: str | None = None
    aggregation: str | None = None
    # A select-many question's options, each counted in a cell of its own.
    options: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """Return what a reader needs to understand the figure; stored with each snapshot."""
        return {
            "title": self.title,
            "question": self.question,
            "source": self.source,
            "unit": self.unit,
            "rule": self.rule,
            "headline": {"period": "all", "breakdown": "total", "category": ""},
            "disclosure_control": self.disclosure_control,
            "survey_question": self.survey_question,
            "aggregation": self.aggregation,
            "options": list(self.options),
            "sources": sorted(self.sources),
        }


def _certificates(standard: str, name: str) -> Indicator:
    return Indicator(
        code=f"{standard.lower()}_certificates",
        title=f"Certificates issued against the {name}",
        question=1,
        source="certification register",
        unit="certificates",
        rule=(
            f"{standard} certificates issued up to the snapshot date, cumulative since the first; "
            "broken down into currently valid, full and provisional, by facility country and "
            "by the holder's membership class; yearly: issued up to each year's end."
        ),
        cells=sql.certificate_cells(standard),
        sources=frozenset(("certification", "membership")),
    )


def _meetings(body: str, name: str) -> Indicator:
    return Indicator(
        code=f"{body}_meetings",
        title=f"{name} meetings since 2016",
        question=4,
        source="governance records",
        unit="meetings",
        rule=(
            f"{name} meetings held from 1 January 2016 up to the snapshot date; "
            "yearly: meetings held in each year."
        ),
        cells=sql.meeting_cells(body),
        sources=frozenset(("governance",)),
    )


CATALOGUE: tuple[Indicator, ...] = (
    _certificates("PS", "Performance Standard"),
    _certificates("CoC", "Chain of Custody Standard"),
    Indicator(
        code="certified_countries",
        title="Countries where certified facilities operate",
        question=1,
        source="certification register",
        unit="countries",
        rule=(
            "Distinct countries of facilities (not removed) covered by a currently valid "
            "certificate of either standard; by standard; per country: the certified facilities "
            "there; yearly: the same on each year's last day."
        ),
        cells=sql.certified_country_cells,
        sources=frozenset(("certification",)),
    ),
    Indicator(
        code="ps_external_leverage_pct",
        title="PS certifications leveraging at least one external certification",
        question=2,
        source="certification register",
        unit="%",
        rule=(
            "PS certificates issued up to the snapshot date that leverage at least one external "
            "certification recognised on their issue date, divided by all PS certificates issued; "
            "also among currently valid ones and per external scheme; yearly: cumulative."
        ),
        cells=sql.external_leverage_cells,
        sources=frozenset(("certification",)),
    ),
    Indicator(
        code="auditing_firms",
        title="Accredited auditing firms",
        question=2,
        source="accreditation register",
        unit="firms",
        rule=(
            "Auditing firms accredited on the snapshot date; per country: accredited firms "
            "operating there; yearly: firms accredited on each year's last day."
        ),
        cells=sql.auditing_firm_cells,
        sources=frozenset(("firms",)),
    ),
    Indicator(
        code="auditing_firm_countries",
        title="Countries where accredited auditing firms operate",
        question=2,
        source="accreditation register",
        unit="countries",
        rule=(
            "Distinct countries where the auditing firms accredited on the snapshot date operate; "
            "yearly: the same on each year's last day."
        ),
        cells=sql.auditing_firm_country_cells,
        sources=frozenset(("firms",)),
    ),
    Indicator(
        code="auditors_trained",
        title="Auditors trained via educationAl since 2017",
        question=2,
        source="educationAl",
        unit="people",
        rule=(
            "Distinct auditors (pseudonymous person keys) with a course completed between "
            "1 January 2017 and the snapshot date; per course; yearly: cumulative to each year end."
        ),
        cells=sql.training_cells(("auditor",)),
        sources=frozenset(("training",)),
    ),
    Indicator(
        code="members_stakeholders_trained",
        title="Members and stakeholders trained via educationAl since 2017",
        question=3,
        source="educationAl",
        unit="people",
        rule=(
            "Distinct member and stakeholder person keys with a course completed between "
            "1 January 2017 and the snapshot date; per role and course; yearly: cumulative."
        ),
        cells=sql.training_cells(("member", "stakeholder")),
        sources=frozenset(("training",)),
    ),
    Indicator(
        code="people_in_ps_facilities",
        title="People working in PS-certified facilities",
        question=3,
        source="certification register (member-reported headcounts)",
        unit="people",
        rule=(
            "Sum of the people working in facilities (each counted once, not removed) covered by "
            "a currently valid PS certificate; by country and membership class; yearly: the same "
            "on each year's last day. Cells backed by too few members are suppressed; every "
            "value carries a small consistent random adjustment (cell key method), so no "
            "facility's headcount can be worked out from differences."
        ),
        cells=sql.people_cells,
        sources=frozenset(("certification", "membership")),
        disclosure_control=True,
    ),
    _meetings("board", "Board"),
    _meetings("standards_committee", "Standards Committee"),
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
        sources=frozenset(("membership",)),
    ),
    Indicator(
        code="applications_received",
        title="Membership applications received",
        question=1,
        source="membership applications",
        unit="applications",
        rule=(
            "Membership applications received up to the snapshot date, by review status, "
            "membership class and country; yearly: received in each year."
        ),
        cells=sql.application_cells,
        sources=frozenset(("applications",)),
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
        sources=frozenset(("survey", "responses", "membership")),
    ),
)

SURVEY_RULES = {
    "sum": "Sum of the answers",
    "mean": "Mean of the answers",
    "median": "Median of the answers",
    "share_yes": "Share of members answering yes",
    "count": "Number of members answering",
}


def by_code() -> dict[str, Indicator]:
    """Return the catalogue keyed by indicator code."""
    return {indicator.code: indicator for indicator in CATALOGUE}


def survey_indicators(conn: Connection) -> list[Indicator]:
    """Return one indicator per survey question that says how it aggregates (data, not code)."""
    q, d = SurveyQuestion.__table__.c, SurveyDefinition.__table__.c
    # The newest definition that asks a question gives its label, unit and aggregation.
    questions = conn.execute(
        select(q.key, q.label, q.unit, q.aggregation, q.type, q.choices, q.logic)
        .join_from(SurveyQuestion.__table__, SurveyDefinition.__table__)
        .where(d.status.in_(("open", "closed")), q.aggregation.in_(tuple(SURVEY_RULES)))
        .order_by(q.key, d.year.desc(), d.version.desc())
    )
    fixed = set(by_code())
    indicators: dict[str, Indicator] = {}
    for key, label, unit, how, kind, choices, logic in questions:
        if key in indicators:
            continue
        code = f"{SURVEY_PREFIX}{key}"
        options = _many(kind, choices)
        if code in fixed:  # a question keyed like a catalogue indicator must not shadow it
            code = f"{SURVEY_PREFIX}q_{key}"
        indicators[key] = Indicator(
            code=code[:60],
            title=label,
            question=3,
            source="annual member survey",
            unit="%" if how == "share_yes" else ("members" if how == "count" else unit or "-"),
            rule=(
                f"{SURVEY_RULES[how]} to the survey question '{label}' ({key}), from accepted "
                "responses only, the latest revision per member and reporting year; answers "
                "outside the question's bounds or its definition are left out. The headline is "
                "the latest reporting year; coverage gives the members who answered of those "
                "active that year. Cells backed by too few members are suppressed; every value "
                "carries a small consistent random adjustment (cell key method), so no member's "
                "answer can be worked out from differences."
                + (" Each option counts the members who chose it." if options else "")
                + (
                    " Answered once per facility: each member's answer is its facilities' total."
                    if (logic or {}).get("repeat")
                    else ""
                )
                + _language(label, logic)
            ),
            cells=sql.survey_cells(key, how, options),
            sources=frozenset(("survey", "membership")),
            disclosure_control=True,
            survey_question=key,
            aggregation=how,
            options=options,
        )
    return list(indicators.values())


def _language(label: str, logic: dict | None) -> str:
    """Say which of the form's languages the published label is in, if it has several."""
    labels = (logic or {}).get("labels") or {}
    shown = next((language for language, text in labels.items() if text == label), None)
    if len(labels) < 2 or shown is None:
        return ""
    others = ", ".join(language for language in labels if language != shown)
    return f" The label is published in {shown}, the form's first language (also: {others})."


def _many(kind: str, choices: list[dict] | None) -> tuple[str, ...]:
    """Return the option names of a select-many question (whose answers are counted per option)."""
    return tuple(str(c["name"]) for c in choices or ()) if kind == "select_many" else ()


def snapshot_catalogue(conn: Connection) -> tuple[Indicator, ...]:
    """Return the indicators a snapshot publishes: the fixed catalogue and the survey's."""
    return (*CATALOGUE, *survey_indicators(conn))
