"""The view a URL asks for: parse and write the query string, and filter cells by it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

import pycountry

FILTER_KEYS = ("year", "country", "standard", "membership_class")
# The table of every figure: its columns (key, heading), and how it is sorted and paged.
TABLE_COLUMNS = (
    ("indicator", "Indicator"),
    ("period", "Year"),
    ("breakdown", "Breakdown"),
    ("category", "Category"),
    ("value", "Value"),
    ("unit", "Unit"),
    ("note", "Note"),
)
KEYS = ("snapshot", "indicator", *FILTER_KEYS, "sort", "page", "preview")
# A staff preview token (outcomes.releases.preview_token) is about 100 characters.
MAX_PREVIEW = 500
STANDARDS = ("PS", "CoC")
# Breakdown names a filter applies to; a cell with another breakdown is not about that filter.
BREAKDOWN_OF = {
    "country": "country",
    "standard": "standard",
    "membership_class": "membership_class",
}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
# Snapshot ids are INTEGER columns: a larger number names none, and PostgreSQL refuses it.
MAX_SNAPSHOT_ID = 2**31 - 1


def is_snapshot_id(text: str) -> bool:
    """Tell whether text is a number that can name a snapshot (ASCII digits: int() refuses "²")."""
    return text.isascii() and text.isdigit() and int(text) <= MAX_SNAPSHOT_ID


class QueryError(ValueError):
    """A query string that names no view; the message says how to fix it."""


@dataclass(frozen=True)
class View:
    """What the reader asked to see: a snapshot, an indicator to explore, and filters."""

    snapshot: int | None = None
    indicator: str | None = None
    year: str | None = None
    country: str | None = None
    standard: str | None = None
    membership_class: str | None = None
    sort: str | None = None  # a table column key, "-" first for descending
    page: int | None = None  # of the table, from 1
    preview: str | None = None  # a staff preview token: shows the build it names

    def with_(self, **changes: Any) -> View:
        """Return a copy with some fields changed; empty values clear a field."""
        return replace(self, **{k: (v or None) for k, v in changes.items()})

    def active_filters(self) -> dict[str, str]:
        """Return the filters that are set."""
        return {k: v for k in FILTER_KEYS if (v := getattr(self, k))}


def parse_query(search: str | None) -> View:
    """Read a URL query string ("?year=2024&country=DE") into a View, or raise QueryError."""
    if not isinstance(search, str | None):
        raise QueryError("the query must be text, such as ?year=2024.")
    try:
        raw = parse_qs((search or "").lstrip("?"), keep_blank_values=True, max_num_fields=20)
    except ValueError:  # more than max_num_fields
        raise QueryError("give at most 20 filters in the address.") from None
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise QueryError(
            f"Unknown filter {', '.join(unknown)!s}: use {', '.join(KEYS)} in the address."
        )
    values = {}
    for key, given in raw.items():
        if len(given) > 1:
            raise QueryError(f"Give {key} once in the address, not {len(given)} times.")
        values[key] = given[0].strip() or None
    snapshot = values.get("snapshot")
    if snapshot is not None and not is_snapshot_id(snapshot):
        raise QueryError(f"snapshot must be a snapshot number, such as 12, not {snapshot!r}.")
    year = values.get("year")
    if year is not None and not (year.isdigit() and len(year) == 4):
        raise QueryError(f"year must be a four-digit year, such as 2024, not {year!r}.")
    country = values.get("country")
    if country is not None:
        country = country.upper()
        if pycountry.countries.get(alpha_2=country) is None:
            raise QueryError(
                f"country must be a two-letter ISO 3166 code, such as DE, not {country!r}."
            )
    standard = values.get("standard")
    if standard is not None and standard not in STANDARDS:
        raise QueryError(f"standard must be one of {', '.join(STANDARDS)}, not {standard!r}.")
    indicator = values.get("indicator")
    if indicator is not None and not _CODE.match(indicator):
        raise QueryError("indicator must be an indicator code, such as ps_certificates.")
    membership_class = values.get("membership_class")
    if membership_class is not None and len(membership_class) > 60:
        raise QueryError("membership_class is too long to be a membership class.")
    sort = values.get("sort")
    if sort is not None and sort.removeprefix("-") not in dict(TABLE_COLUMNS):
        columns = ", ".join(key for key, _ in TABLE_COLUMNS)
        raise QueryError(f"sort must name a column of the table ({columns}), not {sort!r}.")
    page = values.get("page")
    if page is not None and not (page.isascii() and page.isdigit() and 0 < int(page) < 100_000):
        raise QueryError(f"page must be a page number of the table, such as 2, not {page!r}.")
    preview = values.get("preview")
    if preview is not None and len(preview) > MAX_PREVIEW:
        raise QueryError("preview is too long to be a preview link's token.")
    return View(
        preview=preview,
        snapshot=int(snapshot) if snapshot else None,
        indicator=indicator,
        year=year,
        country=country,
        standard=standard,
        membership_class=membership_class,
        sort=sort,
        page=int(page) if page else None,
    )


def to_query(view: View) -> str:
    """Write a View as a URL query string, leaving out what is not set."""
    fields = {k: v for k, v in asdict(view).items() if v not in (None, "")}
    return f"?{urlencode(fields)}" if fields else ""


def standard_of(code: str) -> str | None:
    """Return the standard an indicator is about, from its code prefix (ps_ / coc_)."""
    for standard in STANDARDS:
        if code.startswith(f"{standard.lower()}_"):
            return standard
    return None


def filter_cells(cells: list[dict[str, Any]], view: View) -> list[dict[str, Any]]:
    """Return the cells that match every filter of a view."""
    # (breakdown, category) pairs a cell must be; looked up once, not per cell.
    named = [
        (BREAKDOWN_OF[key], value)
        for key, value in view.active_filters().items()
        if key in ("country", "membership_class")
    ]
    result = []
    for cell in cells:
        if view.year and cell["period"] != view.year:
            continue
        if view.standard:
            own = standard_of(cell["indicator"])
            by_standard = cell["breakdown"] == "standard" and cell["category"] == view.standard
            if own != view.standard and not by_standard:
                continue
        if not all(cell["breakdown"] == b and cell["category"] == c for b, c in named):
            continue
        result.append(cell)
    return result


def selection_cell(code: str, cells: list[dict[str, Any]], view: View) -> dict[str, Any] | None:
    """Return the one cell of an indicator that the view's filters name, or None if it has none.

    A cell has one breakdown, so two filters that each need one (a country and a class) name
    no cell; the standard filter is met by an indicator about that standard itself.
    """
    own = standard_of(code)
    if view.standard and own and own != view.standard:
        return None
    named = [
        (BREAKDOWN_OF[key], value)
        for key, value in view.active_filters().items()
        if key in BREAKDOWN_OF and not (key == "standard" and own)
    ]
    if len(named) > 1:
        return None
    wanted = (view.year or "all", *(named[0] if named else ("total", "")))
    return next((c for c in cells if (c["period"], c["breakdown"], c["category"]) == wanted), None)
