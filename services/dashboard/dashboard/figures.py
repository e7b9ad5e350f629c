"""Pure functions from snapshot data to what the page shows; testable without a browser."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pycountry

from dashboard.numbers import change_text, format_value, hover_format, number_text

Figure = dict[str, Any]  # plotly's JSON figure: {"data": [...], "layout": {...}}

# Dark enough for 4.5:1 contrast against white, for bars read as text by low-vision readers.
COLOUR = "#1f5f8b"


def coverage_text(cells: list[dict[str, Any]], period: str) -> str | None:
    """Return "based on N of M members" for a survey year, from an indicator's coverage cells."""
    found = {
        c["category"]: c["value"]
        for c in cells
        if c["period"] == period and c["breakdown"] == "coverage"
    }
    # Survey-derived figures count members who answered; the response rate, those responding.
    behind = found.get("answered", found.get("responding"))
    if behind is None or "members" not in found:
        return None
    return f"based on {number_text(behind)} of {number_text(found['members'])} members"


def latest_period(cells: list[dict[str, Any]]) -> str | None:
    """Return the newest yearly period among cells."""
    years = [c["period"] for c in cells if c["period"].isdigit()]
    return max(years) if years else None


def yearly(cells: list[dict[str, Any]], *, up_to: str | None = None) -> list[dict[str, Any]]:
    """Return an indicator's yearly total cells in year order, up to a year if given."""
    rows = [
        c
        for c in cells
        if c["period"].isdigit()
        and c["breakdown"] == "total"
        and (not up_to or c["period"] <= up_to)
    ]
    return sorted(rows, key=lambda c: c["period"])


def breakdown(cells: list[dict[str, Any]], name: str, *, period: str = "all") -> list[dict]:
    """Return an indicator's cells of one breakdown for a period, largest first."""
    rows = [c for c in cells if c["breakdown"] == name and c["period"] == period]
    return sorted(rows, key=lambda c: (c["value"] is None, -(c["value"] or 0), c["category"]))


def breakdown_names(cells: list[dict[str, Any]]) -> list[str]:
    """Return the breakdowns an indicator has besides its total and survey coverage."""
    return sorted({c["breakdown"] for c in cells} - {"total", "coverage", "country"})


def series_figure(
    cells: list[dict[str, Any]], title: str, unit: str, *, coverage: list[dict[str, Any]] = ()
) -> Figure:
    """Return a bar chart of an indicator's yearly series; withheld years show as gaps.

    A survey figure's years say under them how many members answered: a total over fewer
    members is not a fall.
    """
    years = [c["period"] for c in cells]
    trace = {
        "type": "bar",
        "x": years,
        "y": [c["value"] for c in cells],
        "marker": {"color": COLOUR},
        "hovertemplate": f"%{{x}}: %{{y:{hover_format([c['value'] for c in cells])}}} {unit}"
        "<extra></extra>",
    }
    ticks = [
        f"{year}<br>{text}" if (text := coverage_text(list(coverage), year)) else year
        for year in years
    ]
    return _figure(
        trace, title, unit, xaxis={"type": "category", "tickvals": years, "ticktext": ticks}
    )


def comparable_text(cells: list[dict[str, Any]], coverage: list[dict[str, Any]], unit: str) -> str:
    """Return " Per answering member: ..." when a survey total's coverage differs between years."""
    answered = {
        c["period"]: c["value"]
        for c in coverage
        if c["breakdown"] == "coverage" and c["category"] == "answered" and c["value"]
    }
    years = [c for c in cells if c["period"] in answered and c["value"] is not None]
    if unit == "%" or len({answered[c["period"]] for c in years}) < 2:
        return ""
    parts = [f"{c['period']}: {number_text(c['value'] / answered[c['period']])}" for c in years]
    return f" Coverage differs between years; per answering member: {'; '.join(parts)}."


def bars_figure(cells: list[dict[str, Any]], title: str, unit: str) -> Figure:
    """Return a horizontal bar chart of one breakdown's categories."""
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [label(c["category"]) for c in cells],
        "x": [c["value"] for c in cells],
        "marker": {"color": COLOUR},
        "hovertemplate": f"%{{y}}: %{{x:{hover_format([c['value'] for c in cells])}}} {unit}"
        "<extra></extra>",
    }
    return _figure(trace, title, unit, yaxis={"autorange": "reversed", "automargin": True})


# A sequential scale: more is darker, from a blue lighter than any text to a near-black one.
SEQUENTIAL = [[0, "#c6dbef"], [0.5, "#4292c6"], [1, "#08306b"]]
# The base map's land is "no data"; withheld countries are a grey of their own, legended beside.
NO_DATA = "#f1f3f5"
SUPPRESSED = "#8d8d8d"


def map_figure(cells: list[dict[str, Any]], title: str, unit: str) -> Figure:
    """Return a world choropleth of a by-country breakdown (ISO alpha-2 categories).

    Countries with a value are shaded (more = darker), withheld ones drawn in their own grey,
    and every other country is the base map's land: no data.
    """
    placed = [c for c in cells if alpha3(c["category"])]
    shown = [c for c in placed if not c["suppressed"] and c["value"] is not None]
    withheld = [c for c in placed if c["suppressed"]]
    line = {"color": "#6c757d", "width": 0.5}
    traces = [
        {
            "type": "choropleth",
            "name": "suppressed",
            "locations": [alpha3(c["category"]) for c in withheld],
            "z": [1] * len(withheld),
            "text": [label(c["category"]) for c in withheld],
            "locationmode": "ISO-3",
            "colorscale": [[0, SUPPRESSED], [1, SUPPRESSED]],
            "showscale": False,
            "showlegend": False,
            "marker": {"line": line},
            "hovertemplate": "%{text}: suppressed<extra></extra>",
        },
        {
            "type": "choropleth",
            "name": unit,
            "locations": [alpha3(c["category"]) for c in shown],
            "z": [c["value"] for c in shown],
            "text": [label(c["category"]) for c in shown],
            "locationmode": "ISO-3",
            "colorscale": SEQUENTIAL,
            "zmin": 0,
            "marker": {"line": line},
            "colorbar": {
                "title": {"text": unit},
                "thickness": 12,
                "tickformat": ",d",
                "exponentformat": "none",
            },
            "hovertemplate": f"%{{text}}: %{{z:{hover_format([c['value'] for c in shown])}}} "
            f"{unit}<extra></extra>",
        },
    ]
    geo = {
        "showframe": False,
        "showcoastlines": False,
        "showland": True,
        "landcolor": NO_DATA,
        "showcountries": True,
        "countrycolor": "#ced4da",
        "projection": {"type": "natural earth"},
        # The whole world, whichever countries have figures: a map zoomed to one reads as all.
        "fitbounds": False,
    }
    figure = _figure(traces[1], title, unit, geo=geo)
    figure["data"] = traces
    return figure


def describe_cells(cells: list[dict[str, Any]], unit: str, *, key: str = "period") -> str:
    """Return a chart's data as a sentence, the text alternative a screen reader reads."""
    if not cells:
        return "No figures to show."
    parts = [
        f"{label(c[key]) if key == 'category' else c[key]}: "
        f"{format_value(c['value'], unit, suppressed=c['suppressed'])}"
        for c in cells
    ]
    return "; ".join(parts) + "."


def alpha3(code: str) -> str | None:
    """Return the ISO 3166 alpha-3 code of an alpha-2 code, or None."""
    country = pycountry.countries.get(alpha_2=code) if len(code) == 2 else None
    return country.alpha_3 if country else None


@lru_cache(maxsize=1024)
def label(category: str) -> str:
    """Return a readable name for a breakdown category (country names for ISO codes)."""
    if len(category) == 2 and category.isupper():
        country = pycountry.countries.get(alpha_2=category)
        if country is not None:
            return getattr(country, "common_name", None) or country.name
    return category or "total"


def table_rows(indicators: dict[str, dict[str, Any]], cells: list[dict]) -> list[dict]:
    """Return the rows of the table of every figure: one per cell, withheld values marked."""
    return [
        {
            "indicator": indicators[c["indicator"]]["title"],
            "code": c["indicator"],
            "period": c["period"],
            "breakdown": c["breakdown"],
            "category": label(c["category"]) if c["breakdown"] != "total" else "",
            "value": None if c["suppressed"] else c["value"],
            "note": "suppressed" if c["suppressed"] else "",
            "unit": indicators[c["indicator"]]["unit"],
        }
        for c in cells
        if c["indicator"] in indicators
    ]


def sort_rows(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    """Return the table's rows ordered by a column ("-" first for descending), blanks last."""
    if not sort:
        return rows
    key = sort.removeprefix("-")
    filled = [r for r in rows if r[key] not in (None, "")]
    blank = [r for r in rows if r[key] in (None, "")]
    return sorted(filled, key=lambda r: r[key], reverse=sort.startswith("-")) + blank


def change_rows(changes: list[Any], indicators: dict[str, dict[str, Any]]) -> list[dict]:
    """Return the headline changes between two snapshots as rows for the "what changed" panel."""
    rows = []
    for change in changes:
        if change.breakdown != "total" or change.indicator not in indicators:
            continue
        unit = indicators[change.indicator]["unit"]
        rows.append(
            {
                "indicator": indicators[change.indicator]["title"],
                "period": change.period,
                "before": format_value(change.old, unit, suppressed=change.status == "released"),
                "now": format_value(change.new, unit, suppressed=change.status == "suppressed"),
                "change": change_text(change.delta, unit),
                "status": change.status,
            }
        )
    return rows


def _figure(trace: dict[str, Any], title: str, unit: str, **layout: Any) -> Figure:
    """Return a figure in plotly's JSON form with the dashboard's plain, readable style.

    Plain dicts, not plotly.graph_objects: validating objects took most of a page's build time.
    """
    axis = {
        "gridcolor": "#e9ecef",
        "zerolinecolor": "#adb5bd",
        "automargin": True,
        # Plain numbers on axes too: 20,000, never 2e+4 or 20k.
        "exponentformat": "none",
        "separatethousands": True,
    }
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "height": 320,
            "font": {"color": "#212529"},
            **layout,
            "xaxis": {**axis, **layout.get("xaxis", {})},
            "yaxis": {
                **axis,
                "title": {"text": unit if unit != "%" else ""},
                **layout.get("yaxis", {}),
            },
        },
    }
