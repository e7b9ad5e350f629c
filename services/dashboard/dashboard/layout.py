"""The public outcomes page, organised by the four M&E questions."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from dashboard import ids
from dashboard.data import SnapshotView
from dashboard.figures import coverage_text, format_value, latest_period
from outcomes.catalogue import QUESTIONS


def page(view: SnapshotView | None) -> Any:
    """Return the whole page for a snapshot, or a friendly note before the first one."""
    if view is None:
        return dbc.Container(
            [header(), dbc.Alert("No published snapshot yet: check back soon.", color="info")],
            id=ids.PAGE,
        )
    indicators = view.indicators()
    coverage = indicators.get("survey_response_rate", {}).get("cells", [])
    sections = [
        html.Section(
            [
                html.H2(f"{number}. {question}", className="h4 mt-4"),
                dbc.Row(
                    [
                        dbc.Col(tile(code, item, coverage), xs=12, md=6, lg=4, className="mb-3")
                        for code, item in indicators.items()
                        if item["question"] == number
                    ]
                ),
            ]
        )
        for number, question in QUESTIONS.items()
        if any(item["question"] == number for item in indicators.values())
    ]
    return html.Div(
        [
            demo_banner() if view.meta["demo"] else None,
            dbc.Container(
                [
                    header(),
                    html.P(
                        ["Updated: ", html.Time(view.meta["as_of"], id=ids.AS_OF)],
                        className="text-body-secondary",
                    ),
                    *sections,
                ],
                id=ids.PAGE,
            ),
        ]
    )


def header() -> Any:
    """Return the page title and what it is about."""
    return html.Header(
        [
            html.H1("Outcomes dashboard: what we have achieved so far", className="h2 mt-3"),
            html.P(
                "Figures published from what members, auditors and the programme report, "
                "each with the rule that counts it.",
                className="lead",
            ),
        ]
    )


def demo_banner() -> Any:
    """Return the ribbon that says the figures are demo data."""
    return html.Div(
        "Demo data: these figures are generated for demonstration and describe no real "
        "organisation.",
        id=ids.DEMO_BANNER,
        className="demo-banner py-2 px-3 text-center fw-semibold",
        role="note",
    )


def tile(code: str, item: dict[str, Any], coverage_cells: list[dict[str, Any]]) -> Any:
    """Return a KPI tile: the number as text, its unit, its counting rule and coverage."""
    value = format_value(item["value"], item["unit"], suppressed=item["suppressed"])
    unit = "" if item["unit"] == "%" else item["unit"]
    notes = []
    if item["source"] == "annual member survey":
        period = latest_period(coverage_cells)
        text = period and coverage_text(coverage_cells, period)
        if text:
            notes.append(html.P(f"{period}: {text}", className="small mb-1"))
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3(item["title"], className="h6 card-title"),
                html.P(
                    [
                        html.Span(value, id=ids.tile_value(code), className="tile-value"),
                        " ",
                        html.Span(unit, className="tile-unit"),
                    ],
                    className="mb-1",
                ),
                *notes,
                html.Details(
                    [html.Summary("How this is counted"), html.P(item["rule"], className="small")]
                ),
            ]
        ),
        id=ids.tile(code),
        className="h-100",
    )
