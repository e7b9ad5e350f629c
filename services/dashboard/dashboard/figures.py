"""Pure functions from snapshot data to what the page shows; testable without a browser."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pycountry

Figure = dict[str, Any]  # plotly's JSON figure: {"data": [...], "layout": {...}}

# Dark enough for 4.5:1 contrast against white, for bars read as text by low-vision readers.
COLOUR = "#1f5f8b"


def format_value(value: float | None, unit: str, *, suppressed: bool = False) -> str:
    """Format a headline value as text; a withheld value says so and is never shown as 0."""
    if suppressed:
        return "suppressed"
    if value is None:
        return "no data"
    text = number_text(value)
    return f"{text}%" if unit == "%" else text


def number_text(value: float) -> str:
    """Format a number with thousands separators and at most one decimal."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


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
    return f"based on {behind:.0f} of {found['members']:.0f} members"


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


def series_figure(cells: list[dict[str, Any]], title: str, unit: str) -> Figure:
    """Return a bar chart of an indicator's yearly series; withheld years show as gaps."""
    trace = {
        "type": "bar",
        "x": [c["period"] for c in cells],
        "y": [c["value"] for c in cells],
        "marker": {"color": COLOUR},
        "hovertemplate": f"%{{x}}: %{{y:,}} {unit}<extra></extra>",
    }
    return _figure(trace, title, unit, xaxis={"type": "category"})


def bars_figure(cells: list[dict[str, Any]], title: str, unit: str) -> Figure:
    """Return a horizontal bar chart of one breakdown's categories."""
    trace = {
        "type": "bar",
        "orientation": "h",
        "y": [label(c["category"]) for c in cells],
        "x": [c["value"] for c in cells],
        "marker": {"color": COLOUR},
        "hovertemplate": f"%{{y}}: %{{x:,}} {unit}<extra></extra>",
    }
    return _figure(trace, title, unit, yaxis={"autorange": "reversed", "automargin": True})


def map_figure(cells: list[dict[str, Any]], title: str, unit: str) -> Figure:
    """Return a world choropleth of a by-country breakdown (ISO alpha-2 categories)."""
    shown = [c for c in cells if c["value"] is not None and alpha3(c["category"])]
    trace = {
        "type": "choropleth",
        "locations": [alpha3(c["category"]) for c in shown],
        "z": [c["value"] for c in shown],
        "text": [label(c["category"]) for c in shown],
        "locationmode": "ISO-3",
        "colorscale": "Blues",
        "marker": {"line": {"color": "#555"}},
        "colorbar": {"title": {"text": unit}},
        "hovertemplate": f"%{{text}}: %{{z:,}} {unit}<extra></extra>",
    }
    geo = {"showframe": False, "showcoastlines": False, "projection": {"type": "natural earth"}}
    return _figure(trace, title, unit, geo=geo)


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
                "change": "" if change.delta is None else f"{change.delta:+,.4g}",
                "status": change.status,
            }
        )
    return rows


def _figure(trace: dict[str, Any], title: str, unit: str, **layout: Any) -> Figure:
    """Return a figure in plotly's JSON form with the dashboard's plain, readable style.

    Plain dicts, not plotly.graph_objects: validating objects took most of a page's build time.
    """
    axis = {"gridcolor": "#e9ecef", "zerolinecolor": "#adb5bd", "automargin": True}
    return {
        "data": [trace],
        "layout": {
            "title": {"text": title, "font": {"size": 15}},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
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


def filtered_cell(
    cells: list[dict[str, Any]], *, year: str | None, breakdown: str | None, category: str | None
) -> dict[str, Any] | None:
    """Return the one cell of an indicator that a year and a breakdown filter name, if it has it."""
    period = year or "all"
    name, value = (breakdown, category) if breakdown else ("total", "")
    return next(
        (c for c in cells if (c["period"], c["breakdown"], c["category"]) == (period, name, value)),
        None,
    )
