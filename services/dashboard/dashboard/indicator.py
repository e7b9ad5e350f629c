"""The page of one indicator, like a grapher: Chart / Map / Table tabs over a time slider."""

from __future__ import annotations

from html import escape as escape_html
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import figures, ids, layout
from dashboard.data import SnapshotView
from dashboard.filters import View, to_query
from dashboard.numbers import number_text

LATEST = "Latest"


def years_of(item: dict[str, Any]) -> list[str]:
    """Return the years an indicator has figures for, oldest first."""
    return sorted({c["period"] for c in item["cells"] if c["period"].isdigit()})


def page(data: SnapshotView, code: str, view: View, origin: str) -> Any:
    """Return the page of an indicator for a view (its year, from the slider), or a message."""
    indicators = data.indicators()
    if code not in indicators:
        return layout.message(
            f"There is no indicator {code!r} in snapshot {data.meta['id']}.", color="warning"
        )
    item = indicators[code]
    years = years_of(item)
    if view.year and view.year not in years:
        shown = ", ".join(years) or "none"
        return layout.message(
            f"{item['title']} has no figures for {view.year}: choose one of these years: {shown}.",
            color="warning",
        )
    period = view.year or "all"
    how = layout.statistic(data, code)
    address = origin.rstrip("/") + f"/indicator/{code}" + to_query(View(year=view.year))
    embed = (
        f'<iframe src="{origin.rstrip("/")}/embed/{code}/chart" width="100%" height="420" '
        f'title="{escape_html(item["title"])}" style="border:0"></iframe>'
    )
    return html.Div(
        [
            layout.demo_banner() if data.meta["demo"] else None,
            dbc.Container(
                [
                    html.P(html.A("All figures", href="/"), className="mt-3 mb-0 small"),
                    html.H1(item["title"], className="h2 mt-1", id=ids.INDICATOR_TITLE),
                    html.P(
                        [
                            f"Source: {item['source'] or 'not stated'}. ",
                            f"{how}. " if how else "",
                            f"How it is counted: {item['rule']}",
                        ],
                        className="small",
                        id=ids.INDICATOR_SOURCE,
                    ),
                    html.P(
                        f"Snapshot {data.meta['id']} of {data.meta['as_of']}; showing "
                        + (view.year if view.year else "the latest figures")
                        + ".",
                        className="text-body-secondary",
                    ),
                    slider(years, view.year),
                    dbc.Tabs(
                        [
                            dbc.Tab(chart_tab(code, item, view), label="Chart", tab_id="chart"),
                            dbc.Tab(map_tab(code, item, period), label="Map", tab_id="map"),
                            dbc.Tab(table_tab(code, item, period), label="Table", tab_id="table"),
                        ],
                        id=ids.INDICATOR_TABS,
                        active_tab="chart",
                        className="mt-3",
                    ),
                    share(address, embed),
                ]
            ),
        ]
    )


def slider(years: list[str], year: str | None) -> Any:
    """Return the time slider: one stop per year and the latest figures at its end."""
    stops = [*years, LATEST]
    return html.Div(
        [
            html.Label("Year", htmlFor=ids.INDICATOR_YEAR, className="small fw-semibold"),
            dcc.Slider(
                id=ids.INDICATOR_YEAR,
                min=0,
                max=len(stops) - 1,
                step=1,
                # Positions are not years: the marks name them, a number box would not.
                allow_direct_input=False,
                marks={str(i): stop for i, stop in enumerate(stops)},
                value=stops.index(year) if year in years else len(stops) - 1,
            ),
        ],
        className="mt-2",
    )


def year_of(position: float | None, years: list[str]) -> str | None:
    """Return the year at a position of the slider (None: the latest figures)."""
    # The slider sends its positions as numbers, 3.0 as well as 3.
    if not isinstance(position, int | float) or position != int(position):
        return None
    return years[int(position)] if 0 <= position < len(years) else None


def chart_tab(code: str, item: dict[str, Any], view: View) -> Any:
    """Return the yearly series up to the chosen year, with survey coverage under each year."""
    series = layout.series_cells(code, item, View(year=view.year))
    title = f"{item['title']}, by year"
    if not series:
        return layout.unavailable(title, ids.INDICATOR_CHART, "This figure has no yearly series.")
    coverage = [c for c in item["cells"] if c["breakdown"] == "coverage"]
    return html.Div(
        [
            layout.chart(
                figures.series_figure(series, title, item["unit"], coverage=coverage),
                ids.INDICATOR_CHART,
                figures.describe_cells(series, item["unit"])
                + figures.comparable_text(series, coverage, item["unit"]),
            ),
            html.P(
                [
                    "Download the chart: ",
                    dbc.Button("PNG", id=ids.INDICATOR_PNG, size="sm", className="me-1"),
                    dbc.Button("SVG", id=ids.INDICATOR_SVG, size="sm"),
                ],
                className="small",
            ),
        ],
        className="pt-3",
    )


def map_tab(code: str, item: dict[str, Any], period: str) -> Any:
    """Return the map of the chosen year, or say the figure has none."""
    rows = figures.breakdown(item["cells"], "country", period=period)
    unit = layout.unit_of(code, item, "country")
    title = f"{item['title']} by country ({unit})"
    if not rows:
        when = "the latest figures" if period == "all" else period
        return html.Div(
            layout.unavailable(
                title, ids.INDICATOR_MAP, f"No figures by country for {when} of this indicator."
            ),
            className="pt-3",
        )
    return html.Div(
        [
            layout.chart(
                figures.map_figure(rows, title, unit),
                ids.INDICATOR_MAP,
                figures.describe_cells(rows, unit, key="category"),
            ),
            layout.map_key(ids.INDICATOR_MAP),
        ],
        className="pt-3",
    )


def table_tab(code: str, item: dict[str, Any], period: str) -> Any:
    """Return every figure of the chosen year, with the download of what is shown."""
    cells = [c for c in item["cells"] if c["period"] == period]
    rows = figures.table_rows({code: item}, cells)
    body = html.Div(
        dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th(h, scope="col")
                            for h in ("Breakdown", "Category", "Value", "Note")
                        ]
                    )
                ),
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(r["breakdown"]),
                                html.Td(r["category"]),
                                html.Td(
                                    ""
                                    if r["value"] is None
                                    else f"{number_text(r['value'])} {r['unit']}",
                                    className="text-end",
                                ),
                                html.Td(r["note"]),
                            ]
                        )
                        for r in rows
                    ]
                ),
            ],
            id=ids.INDICATOR_TABLE,
            size="sm",
            striped=True,
            responsive=True,
        )
        if rows
        else html.P("No figures for this year.", id=ids.INDICATOR_TABLE),
    )
    return html.Div(
        [
            body,
            html.P(
                ["Download what is shown: ", dbc.Button("CSV", id=ids.INDICATOR_CSV, size="sm")],
                className="small",
            ),
        ],
        className="pt-3",
    )


def share(address: str, embed: str) -> Any:
    """Return the link to this view and the code to embed the chart, each with a copy button."""
    return html.Section(
        [
            html.H2("Share", className="h5 mt-4"),
            dbc.Label("Link to this view", html_for=ids.INDICATOR_LINK, className="small mb-0"),
            html.Div(
                [
                    dbc.Input(id=ids.INDICATOR_LINK, value=address, readonly=True, size="sm"),
                    dcc.Clipboard(target_id=ids.INDICATOR_LINK, title="Copy the link"),
                ],
                className="d-flex gap-2 align-items-center mb-2",
            ),
            dbc.Label("Embed the chart", html_for=ids.INDICATOR_EMBED, className="small mb-0"),
            html.Div(
                [
                    dbc.Textarea(id=ids.INDICATOR_EMBED, value=embed, readonly=True, rows=2),
                    dcc.Clipboard(target_id=ids.INDICATOR_EMBED, title="Copy the embed code"),
                ],
                className="d-flex gap-2 align-items-center mb-5",
            ),
        ],
        **{"aria-label": "Share"},
    )
