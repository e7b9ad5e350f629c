"""Pure functions from snapshot data to what the page shows; testable without a browser."""

from __future__ import annotations

from typing import Any


def format_value(value: float | None, unit: str, *, suppressed: bool = False) -> str:
    """Format a headline value as text; a withheld value says so and is never shown as 0."""
    if suppressed:
        return "suppressed"
    if value is None:
        return "no data"
    if unit == "%":
        return f"{value:.0f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def coverage_text(cells: list[dict[str, Any]], period: str) -> str | None:
    """Return "based on N of M members" for a survey year, from the response-rate cells."""
    found = {
        c["category"]: c["value"]
        for c in cells
        if c["period"] == period and c["breakdown"] == "coverage"
    }
    if "responding" not in found or "members" not in found:
        return None
    return f"based on {found['responding']:.0f} of {found['members']:.0f} members"


def latest_period(cells: list[dict[str, Any]]) -> str | None:
    """Return the newest yearly period among cells."""
    years = [c["period"] for c in cells if c["period"].isdigit()]
    return max(years) if years else None
