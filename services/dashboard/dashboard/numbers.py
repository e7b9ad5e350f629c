"""Numbers as people read them, in one place: the page, the charts and the downloads use these."""

from __future__ import annotations

# Values of 100 or more are published as whole numbers, smaller ones to one decimal: a decimal
# of 1,882,624.5 t CO2e says nothing, one of 37.7% does.
WHOLE_FROM = 100


def published(value: float | None) -> float | int | None:
    """Return a value at the precision it is published at (never more digits than shown)."""
    if value is None:
        return None
    if float(value).is_integer() or abs(value) >= WHOLE_FROM:
        return round(value)
    return round(value, 1)


def number_text(value: float) -> str:
    """Format a number with thousands separators at its published precision, never as 1e+04."""
    rounded = published(value)
    return f"{rounded:,}" if isinstance(rounded, int) else f"{rounded:,.1f}"


def format_value(value: float | None, unit: str, *, suppressed: bool = False) -> str:
    """Format a headline value as text; a withheld value says so and is never shown as 0."""
    if suppressed:
        return "suppressed"
    if value is None:
        return "no data"
    text = number_text(value)
    return f"{text}%" if unit == "%" else text


def change_text(delta: float | None, unit: str) -> str:
    """Format a change with its sign; a change of a percentage is in percentage points (pp)."""
    if delta is None:
        return ""
    sign = "+" if delta > 0 else ("-" if delta < 0 else "")
    text = f"{sign}{number_text(abs(delta))}"
    return f"{text} pp" if unit == "%" else text


def hover_format(values: list[float | None]) -> str:
    """Return the d3 format for chart hovers and axes that matches number_text for these values."""
    whole = all(v is None or published(v) == round(v) for v in values)
    return ",.0f" if whole else ",.1f"
