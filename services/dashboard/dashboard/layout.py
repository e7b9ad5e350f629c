"""The public outcomes page, organised by the four M&E questions, and its embeddable parts."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import dash_bootstrap_components as dbc
import orjson
from dash import dcc, html
from dash.development.base_component import Component

from dashboard import figures, ids
from dashboard.data import SnapshotView
from dashboard.export import LICENCE, LICENCE_URL, citation
from dashboard.filters import (
    BREAKDOWN_OF,
    STANDARDS,
    TABLE_COLUMNS,
    View,
    filter_cells,
    selection_cell,
    standard_of,
    to_query,
)
from dashboard.numbers import format_value, number_text
from outcomes.catalogue import QUESTIONS
from outcomes.models import MEMBERSHIP_CLASSES
from outcomes.releases import ReleaseView

# plotly.js fetches map outlines from its CDN unless told otherwise; ours are in assets/.
# No toolbar over the titles, and nothing offers to upload the data to Plotly's cloud.
GRAPH_CONFIG = {
    "topojsonURL": "/assets/topojson/",
    "displaylogo": False,
    "displayModeBar": False,
    "showSendToCloud": False,
    "responsive": True,
}
OTHER_QUESTION = "Other figures"
# Breakdowns counted in another unit than their indicator's headline.
BREAKDOWN_UNITS = {
    ("certified_countries", "country"): "facilities",
}
TABLE_PAGE_SIZE = 25
SKIP = "visually-hidden-focusable skip-link bg-white p-2 d-inline-block"
PREVIEW_REFUSED = "This preview link has expired, is not genuine or is for another build."


def shell() -> Any:
    """Return the frame every address shares; a callback fills it from the URL."""
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Download(id=ids.DOWNLOAD),
            dcc.Store(id=ids.FOCUS),
            html.Main(dbc.Spinner(color="primary"), id=ids.PAGE),
        ]
    )


def message(text: str, *, color: str = "info", link: bool = True) -> Any:
    """Return a page that only says something, with a way back to the latest figures."""
    return dbc.Container(
        [
            header(),
            dbc.Alert(
                [text, " ", html.A("Show the latest figures.", href="/") if link else None],
                color=color,
                id=ids.QUERY_ERROR,
            ),
        ]
    )


def no_snapshot() -> Any:
    """Return the friendly page shown before the first release."""
    return message("Nothing has been released yet: check back soon.", link=False)


def page(
    data: SnapshotView,
    view: View,
    *,
    snapshots: list[dict[str, Any]],
    changes: tuple[int | None, list[Any]],
    stories: list[dict[str, Any]],
) -> Any:
    """Return the whole page for a published snapshot and the reader's filters."""
    latest_id = snapshots[0]["id"] if snapshots else data.meta["id"]
    return html.Div(
        [
            html.Nav(
                [
                    html.A("Skip to the filters", href="#filters", className=SKIP),
                    html.A(
                        "Skip to the table of every figure", href="#every-figure", className=SKIP
                    ),
                ],
                **{"aria-label": "Skip links"},
            ),
            demo_banner() if data.meta["demo"] else None,
            dbc.Container(
                [
                    header(),
                    snapshot_bar(data, view, snapshots, latest_id),
                    *figures_shown(data, view),
                    changes_panel(changes, data.indicators()),
                    case_study_list(stories),
                    downloads(data),
                ]
            ),
        ]
    )


@lru_cache(maxsize=128)
def figures_shown(data: SnapshotView, view: View) -> tuple[orjson.Fragment, ...]:
    """Return the controls, tiles, charts and table of a snapshot seen through a view, as JSON.

    Built once per snapshot and view in each process: both are immutable, and building the
    components is most of a page's cost (the list of snapshots, the changes and the case
    studies around them are not cached: they change without the snapshot changing).
    """
    indicators = data.indicators()
    coverage = indicators.get("survey_response_rate", {}).get("cells", [])
    questions = {**QUESTIONS, 0: OTHER_QUESTION}
    sections = [
        html.Section(
            [
                html.H2(f"{n}. {q}" if n else q, className="h4 mt-4"),
                dbc.Row(
                    [
                        dbc.Col(
                            tile(
                                code,
                                filtered(code, item, view),
                                coverage,
                                view.year,
                                statistic(data, code),
                            ),
                            xs=12,
                            md=6,
                            lg=4,
                            className="mb-3",
                        )
                        for code, item in indicators.items()
                        if _question(item) == n
                    ]
                ),
            ],
            **{"aria-label": q},
        )
        for n, q in questions.items()
        if any(_question(item) == n for item in indicators.values())
    ]
    parts = (
        controls(data, view),
        *sections,
        explorer(data, indicators, view),
        maps(data, view),
        table(indicators, view, data),
    )
    # JSON bytes that Dash's serialiser (orjson) copies into a response as they are: one object
    # per part, not thousands of dicts for the garbage collector to scan again and again.
    return tuple(orjson.Fragment(orjson.dumps(plain(part))) for part in parts)


def plain(value: Any) -> Any:
    """Return components in the JSON form Dash sends them in (dicts are taken as already plain).

    Dash serialises a response made only of plain values in one orjson call; components make it
    walk the whole tree in Python (about 7 ms for the page).
    """
    if isinstance(value, Component):
        shape = value.to_plotly_json()
        return {**shape, "props": {k: plain(v) for k, v in shape["props"].items()}}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def filtered(code: str, item: dict[str, Any], view: View) -> dict[str, Any]:
    """Return a tile's item showing the cell the filters name, or saying it has none."""
    chosen = view.active_filters()
    if not chosen:
        return item
    words = _filter_words(view)
    cell = selection_cell(code, item["cells"], view)
    # A country's cell of a count of countries counts something else there (its facilities).
    if view.country and item["unit"] == "countries":
        cell = None
        why = "a count of countries has no value for one country."
    elif cell is None:
        why = "this figure is not published for that selection."
    if cell is None:
        return {
            **item,
            "value": None,
            "suppressed": False,
            "unavailable": True,
            "scope": f"Not available for {words}: {why}",
        }
    return {
        **item,
        "value": cell["value"],
        "suppressed": cell["suppressed"],
        "scope": f"For {words}.",
    }


def _question(item: dict[str, Any]) -> int:
    """Return the M&E question an indicator answers, 0 for one outside the four."""
    return item["question"] if item["question"] in QUESTIONS else 0


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


def _select(label: str, id_: str, options: list[tuple[str, str]], value: Any) -> Any:
    """Return a labelled native select: keyboard- and screen-reader-friendly."""
    return dbc.Col(
        [
            dbc.Label(label, html_for=id_, className="small fw-semibold mb-0"),
            dbc.Select(
                id=id_,
                options=[{"label": text, "value": key} for key, text in options],
                value="" if value is None else str(value),
                # dbc.Select shows its placeholder for the empty value: name it like "All ...".
                placeholder=options[0][1] if options and options[0][0] == "" else None,
            ),
        ],
        xs=12,
        sm=6,
        lg=True,
    )


def snapshot_bar(
    data: SnapshotView, view: View, snapshots: list[dict[str, Any]], latest_id: int
) -> Any:
    """Return the "Updated" date, the release chooser and, on an old one, the newer note."""
    newer = data.meta["id"] != latest_id
    options = [(str(s["id"]), release_label(s)) for s in snapshots]
    return html.Div(
        [
            html.P(
                ["Updated: ", html.Time(data.meta["as_of"], id=ids.AS_OF)],
                className="text-body-secondary mb-1",
            ),
            dbc.Alert(
                [
                    f"You are looking at {release_label(data.meta)}. A newer release exists: ",
                    html.A(
                        "show the latest figures", href=to_query(view.with_(snapshot=None)) or "/"
                    ),
                    ".",
                ],
                id=ids.NEWER_NOTE,
                color="warning",
                className="py-2",
            )
            if newer
            else None,
            dbc.Row(
                _select("Release", ids.SNAPSHOT, options, data.meta["id"]),
                className="mb-2",
            ),
            html.P(html.A("Release history and corrections", href="/releases"), className="small"),
        ]
    )


@lru_cache(maxsize=16)
def choices(data: SnapshotView) -> tuple[list[str], list[str], list[str]]:
    """Return the years (newest first), countries and classes a snapshot has figures for."""
    years = sorted({c["period"] for c in data.cells if c["period"].isdigit()}, reverse=True)
    countries = sorted(
        {c["category"] for c in data.cells if c["breakdown"] == "country"}, key=figures.label
    )
    present = {c["category"] for c in data.cells if c["breakdown"] == "membership_class"}
    classes = [c for c in MEMBERSHIP_CLASSES if c in present] + sorted(
        present - set(MEMBERSHIP_CLASSES)
    )
    return years, countries, classes


def unknown_choice(data: SnapshotView, view: View) -> str | None:
    """Return what to fix when a filter names a value the snapshot has no figures for."""
    if not (view.year or view.country or view.membership_class):
        return None
    years, countries, classes = choices(data)
    for key, value, known in (
        ("year", view.year, years),
        ("country", view.country, countries),
        ("membership_class", view.membership_class, classes),
    ):
        if value and value not in known:
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            return f"There are no figures for {key}={value}: choose one of {listed or 'none'}."
    return None


def controls(data: SnapshotView, view: View) -> Any:
    """Return the filters; each choice goes into the address so a view can be shared."""
    years, countries, classes = choices(data)
    return html.Form(
        dbc.Row(
            [
                _select("Year", ids.YEAR, [("", "All years"), *((y, y) for y in years)], view.year),
                _select(
                    "Country",
                    ids.COUNTRY,
                    [("", "All countries"), *((c, figures.label(c)) for c in countries)],
                    view.country,
                ),
                _select(
                    "Standard",
                    ids.STANDARD,
                    [("", "All standards"), *((s, s) for s in STANDARDS)],
                    view.standard,
                ),
                _select(
                    "Membership class",
                    ids.MEMBERSHIP_CLASS,
                    [("", "All classes"), *((c, c) for c in classes)],
                    view.membership_class,
                ),
                dbc.Col(
                    dbc.Button("Clear filters", id=ids.CLEAR, color="dark", outline=True),
                    xs=12,
                    lg="auto",
                    className="d-flex align-items-end mt-2 mt-lg-0",
                ),
            ],
            className="g-2",
        ),
        className="border rounded p-2 bg-light",
        id="filters",
        tabIndex="-1",
        role="search",
        **{"aria-label": "Filter the figures"},
    )


# What a survey-derived figure is, from the aggregation its snapshot metadata names.
STATISTICS = {
    "sum": "Sum of members' answers",
    "mean": "Mean of members' answers (each member counts once)",
    "median": "Median of members' answers",
    "share_yes": "Share of answering members who said yes",
    "count": "Number of members answering",
}


def statistic(data: SnapshotView, code: str) -> str | None:
    """Return which statistic an indicator is (median, mean, sum...), if its metadata says."""
    how = data.meta.get("indicators", {}).get(code, {}).get("aggregation")
    return STATISTICS.get(how) if isinstance(how, str) else None


def tile(
    code: str,
    item: dict[str, Any],
    coverage_cells: list[dict[str, Any]],
    year: str | None = None,
    how: str | None = None,
) -> Any:
    """Return a KPI tile: the number as text, its unit, its counting rule and coverage."""
    unavailable = item.get("unavailable", False)
    value = (
        "not available"
        if unavailable
        else format_value(item["value"], item["unit"], suppressed=item["suppressed"])
    )
    unit = "" if item["unit"] == "%" or unavailable else item["unit"]
    notes = []
    if how:
        notes.append(html.P(how, className="small mb-1 tile-statistic"))
    if item.get("scope"):
        notes.append(html.P(item["scope"], className="small text-body-secondary mb-1 tile-scope"))
    if item["suppressed"]:
        notes.append(
            html.P(
                "Withheld: too few members are behind this figure to publish it.",
                className="small mb-1",
            )
        )
    if item["source"] == "annual member survey" and not unavailable:
        # A survey-derived figure carries its own coverage; the response rate speaks for itself.
        own = [c for c in item["cells"] if c["breakdown"] == "coverage"]
        cells = own or coverage_cells
        # The coverage of the year shown: the one filtered to, or the latest (the headline's).
        period = year or figures.latest_period(cells)
        text = period and figures.coverage_text(cells, period)
        if text:
            notes.append(html.P(f"{period}: {text}", className="small mb-1"))
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3(
                    html.A(
                        item["title"],
                        href=f"/indicator/{code}" + (f"?year={year}" if year else ""),
                        className="link-dark",
                        title="Chart, map and table of this figure",
                    ),
                    className="h6 card-title",
                ),
                html.P(
                    [
                        html.Span(
                            value,
                            id=ids.tile_value(code),
                            className="tile-value tile-unavailable"
                            if unavailable
                            else "tile-value",
                        ),
                        " ",
                        html.Span(unit, className="tile-unit"),
                    ],
                    className="mb-1",
                ),
                *notes,
                html.Details(
                    [
                        html.Summary("How this is counted"),
                        html.P(item["rule"], className="small mb-1"),
                        html.P(
                            f"Source: {item['source']}." if item["source"] else "",
                            className="small text-body-secondary mb-0",
                        ),
                    ]
                ),
            ]
        ),
        id=ids.tile(code),
        className="h-100 bg-light" if unavailable else "h-100",
    )


def chart(fig: Any, id_: str, description: str) -> Any:
    """Return a chart with its data as text beside it, for readers who cannot see it."""
    # The title is text above the chart, not plotly's: it wraps on a phone instead of being cut.
    title = fig["layout"].pop("title", {}).get("text", "")
    return html.Figure(
        [
            html.H3(title, className="h6 mb-0 chart-title") if title else None,
            dcc.Graph(id=id_, figure=fig, config=GRAPH_CONFIG, className="chart"),
            html.Figcaption(description, id=f"{id_}-text", className="small text-body-secondary"),
        ],
        className="mb-3",
    )


def unavailable(title: str, id_: str, text: str) -> Any:
    """Return, in a chart's place, its title and why there is nothing to draw for the filters."""
    return html.Figure(
        [
            html.H3(title, className="h6 mb-0 chart-title"),
            html.P(text, id=f"{id_}-text", className="text-body-secondary bg-light p-3 mb-0"),
        ],
        className="mb-3 chart-unavailable",
    )


def _filter_words(view: View) -> str:
    """Return the active filters as words: "Brazil, 2024"."""
    return ", ".join(
        figures.label(v) if k == "country" else (f"{v} standard" if k == "standard" else v)
        for k, v in view.active_filters().items()
    )


def breakdown_part(code: str, item: dict[str, Any], name: str, view: View) -> Any:
    """Return one breakdown of an indicator for the filters, or say it has none for them."""
    title = f"{item['title']} by {name.replace('_', ' ')}"
    id_ = f"{ids.BREAKDOWNS}-{name}"
    own = standard_of(code)
    others = [
        key
        for key in ("country", "membership_class", "standard")
        if getattr(view, key) and BREAKDOWN_OF[key] != name and not (key == "standard" and own)
    ]
    rows = figures.breakdown(item["cells"], name, period=view.year or "all")
    chosen = getattr(view, name, None) if name in BREAKDOWN_OF else None
    if chosen:
        rows = [c for c in rows if c["category"] == chosen]
    if others or (view.standard and own and own != view.standard) or not rows:
        return unavailable(title, id_, f"Not available for {_filter_words(view)}.")
    return chart(
        figures.bars_figure(rows, title, unit_of(code, item, name)),
        id_,
        figures.describe_cells(rows, unit_of(code, item, name), key="category"),
    )


def unit_of(code: str, item: dict[str, Any], breakdown: str) -> str:
    """Return the unit of an indicator's breakdown (certified countries by country: facilities)."""
    return BREAKDOWN_UNITS.get((code, breakdown), item["unit"])


def series_cells(code: str, item: dict[str, Any], view: View) -> list[dict[str, Any]]:
    """Return the yearly cells of the selection the filters name, up to the year chosen."""
    years = sorted({c["period"] for c in item["cells"] if c["period"].isdigit()})
    found = (
        selection_cell(code, item["cells"], view.with_(year=y))
        for y in years
        if not view.year or y <= view.year
    )
    return [c for c in found if c is not None]


def explorer(data: SnapshotView, indicators: dict[str, dict[str, Any]], view: View) -> Any:
    """Return one indicator explored: its yearly series and its breakdowns."""
    code = view.indicator if view.indicator in indicators else next(iter(indicators))
    item = indicators[code]
    series = series_cells(code, item, view)
    title = f"{item['title']}, by year"
    if series:
        coverage = [c for c in item["cells"] if c["breakdown"] == "coverage"]
        series_part = chart(
            figures.series_figure(series, title, item["unit"], coverage=coverage),
            ids.SERIES,
            figures.describe_cells(series, item["unit"])
            + figures.comparable_text(series, coverage, item["unit"]),
        )
    else:
        series_part = unavailable(title, ids.SERIES, f"Not available for {_filter_words(view)}.")
    parts = [
        dbc.Col(breakdown_part(code, item, name, view), md=6)
        for name in figures.breakdown_names(item["cells"])
    ]
    standards = {standard_of(c): c for c in indicators if c.endswith("_certificates")}
    if len(standards) > 1:
        rows = []
        for standard, own in standards.items():
            cell = selection_cell(own, indicators[own]["cells"], view)
            if cell is not None:
                rows.append({**cell, "category": f"{standard} standard"})
        title = "Certificates by standard"
        parts.append(
            dbc.Col(
                chart(
                    figures.bars_figure(rows, title, "certificates"),
                    f"{ids.BREAKDOWNS}-standard",
                    figures.describe_cells(rows, "certificates", key="category"),
                )
                if rows
                else unavailable(
                    title, f"{ids.BREAKDOWNS}-standard", f"Not available for {_filter_words(view)}."
                ),
                md=6,
            )
        )
    options = [(c, i["title"]) for c, i in indicators.items()]
    return html.Section(
        [
            html.H2("Explore an indicator", className="h4 mt-4"),
            dbc.Row(_select("Indicator", ids.INDICATOR, options, code), className="mb-2"),
            series_part,
            dbc.Row(parts),
        ],
        **{"aria-label": "Explore an indicator"},
    )


def maps(data: SnapshotView, view: View) -> Any:
    """Return the world maps of certified facilities and of people working in them."""
    indicators = data.indicators()
    cards = []
    for id_, codes, title in (
        (ids.MAP_CERTIFIED, ("certified_countries", "ps_certificates"), "Certified facilities"),
        (ids.MAP_PEOPLE, ("people_in_ps_facilities",), "People working in PS-certified facilities"),
    ):
        code = next(
            (
                c
                for c in codes
                if figures.breakdown(indicators.get(c, {}).get("cells", []), "country")
            ),
            None,
        )
        if code is None:
            continue
        item = indicators[code]
        unit = unit_of(code, item, "country")
        heading = f"{title if code != 'ps_certificates' else item['title']} by country ({unit})"
        rows = figures.breakdown(item["cells"], "country", period=view.year or "all")
        if view.country:
            rows = [c for c in rows if c["category"] == view.country]
        # A map has one breakdown (country): a class or another standard names no cell of it.
        own = standard_of(code)
        if view.membership_class or (view.standard and own != view.standard) or not rows:
            part = unavailable(heading, id_, f"Not available for {_filter_words(view)}.")
        else:
            part = html.Div(
                [
                    chart(
                        figures.map_figure(rows, heading, unit),
                        id_,
                        figures.describe_cells(rows, unit, key="category"),
                    ),
                    map_key(id_),
                ]
            )
        cards.append(dbc.Col(part, lg=6))
    if not cards:
        return None
    return html.Section(
        [html.H2("Where", className="h4 mt-4"), dbc.Row(cards)], **{"aria-label": "Where"}
    )


def map_key(id_: str) -> Any:
    """Return the map's key for what its colour scale does not say: no data and suppressed."""
    swatch = {"className": "map-key", "aria-hidden": "true"}
    return html.P(
        [
            "Darker: more. ",
            html.Span(style={"background": figures.NO_DATA}, **swatch),
            "no data",
            html.Span(style={"background": figures.SUPPRESSED}, **swatch),
            "suppressed (too few members to publish)",
        ],
        id=f"{id_}-key",
        className="small mb-3",
    )


def table(indicators: dict[str, dict[str, Any]], view: View, data: SnapshotView) -> Any:
    """Return the table of every figure that matches the filters, sorted and paged by the URL."""
    rows = figures.table_rows(indicators, filter_cells(list(data.cells), view))
    if not rows:
        body: list[Any] = [
            dbc.Alert(
                "No figures match these filters: choose another year, country, standard or "
                "membership class, or clear the filters.",
                id=ids.NO_MATCH,
                color="secondary",
            )
        ]
    else:
        pages = -(-len(rows) // TABLE_PAGE_SIZE)
        page = min(view.page or 1, pages)
        first = (page - 1) * TABLE_PAGE_SIZE
        shown = figures.sort_rows(rows, view.sort)[first : first + TABLE_PAGE_SIZE]
        body = [
            html.P(
                "Scroll the table sideways to see every column.",
                className="small text-body-secondary d-md-none mb-1",
            ),
            dbc.Table(
                [
                    html.Thead(html.Tr([_sort_heading(view, *column) for column in TABLE_COLUMNS])),
                    html.Tbody([_table_row(row) for row in shown]),
                ],
                id=ids.TABLE,
                size="sm",
                striped=True,
                responsive=True,
            ),
            _table_pages(view, page, pages, len(rows)),
        ]
    return html.Section(
        [html.H2("Every figure", className="h4 mt-4"), *body],
        id="every-figure",
        tabIndex="-1",
        **{"aria-label": "Every figure"},
    )


def _address(view: View) -> str:
    """Return the address of a view, relative to the page."""
    return to_query(view) or "/"


def _sort_heading(view: View, key: str, heading: str) -> Any:
    """Return a column heading whose link sorts by it: ascending first, then descending."""
    state = {key: "ascending", f"-{key}": "descending"}.get(view.sort or "", "none")
    following = f"-{key}" if state == "ascending" else key
    arrow = {"ascending": " ▲", "descending": " ▼"}.get(state, "")
    return html.Th(
        [
            dcc.Link(
                heading,
                href=_address(view.with_(sort=following, page=None)),
                id=ids.table_sort(key),
                title=f"Sort by {heading.lower()}, "
                + ("descending" if state == "ascending" else "ascending"),
            ),
            html.Span(arrow, **{"aria-hidden": "true"}),
        ],
        scope="col",
        **{"aria-sort": state},
    )


def _table_row(row: dict[str, Any]) -> Any:
    """Return one figure as a table row; a withheld value is blank and named in Note."""
    value = "" if row["value"] is None else number_text(row["value"])
    return html.Tr(
        [
            html.Td(row["indicator"]),
            html.Td(row["period"]),
            html.Td(row["breakdown"]),
            html.Td(row["category"]),
            html.Td(value, className="text-end"),
            html.Td(row["unit"]),
            html.Td(row["note"]),
        ]
    )


def _table_pages(view: View, page: int, pages: int, count: int) -> Any:
    """Return the links to the table's previous and next pages, and where the reader is."""
    first = (page - 1) * TABLE_PAGE_SIZE + 1
    last = min(page * TABLE_PAGE_SIZE, count)
    return html.Nav(
        [
            dcc.Link(
                "Previous page",
                href=_address(view.with_(page=page - 1 if page > 2 else None)),
                id=ids.TABLE_PREVIOUS,
                className="me-3",
            )
            if page > 1
            else None,
            html.Span(f"Figures {first:,}-{last:,} of {count:,} (page {page} of {pages})"),
            dcc.Link(
                "Next page",
                href=_address(view.with_(page=page + 1)),
                id=ids.TABLE_NEXT,
                className="ms-3",
            )
            if page < pages
            else None,
        ],
        className="small mb-2",
        **{"aria-label": "Pages of the table"},
    )


def changes_panel(changes: tuple[int | None, list[Any]], indicators: dict[str, Any]) -> Any:
    """Return what changed since the previous snapshot."""
    previous, cells = changes
    rows = figures.change_rows(cells, indicators)
    if previous is None:
        body: Any = html.P("This is the first published snapshot.")
    elif not rows:
        body = html.P(f"No headline figure changed since snapshot {previous}.")
    else:
        body = dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th(h, scope="col")
                            for h in ("Indicator", "Year", "Before", "Now", "Change")
                        ]
                    )
                ),
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(r["indicator"]),
                                html.Td(r["period"]),
                                html.Td(r["before"]),
                                html.Td(r["now"]),
                                html.Td(r["change"] or r["status"]),
                            ]
                        )
                        for r in rows
                    ]
                ),
            ],
            size="sm",
            striped=True,
            responsive=True,
        )
    title = f"What changed since snapshot {previous}" if previous else "What changed"
    others = len(cells) - len(rows)
    note = html.P(
        f"{others} more figures changed in yearly values and breakdowns: see the table or the "
        "downloads.",
        className="small text-body-secondary",
    )
    return html.Section(
        [html.H2(title, className="h4 mt-4"), body, note if others > 0 else None],
        id=ids.CHANGES,
        **{"aria-label": title},
    )


def case_study_list(stories: list[dict[str, Any]]) -> Any:
    """Return the case studies with their country and a link."""
    if not stories:
        return None
    items = [
        dbc.ListGroupItem(
            [
                html.H3(
                    html.A(s["title"], href=s["link"], rel="noopener")
                    if _is_web_link(s["link"])
                    else s["title"],
                    className="h6 mb-1",
                ),
                html.P(figures.label(s["country"]), className="small text-body-secondary mb-1"),
                html.P(s["summary"], className="small mb-0"),
            ]
        )
        for s in stories
    ]
    return html.Section(
        [html.H2("Case studies", className="h4 mt-4"), dbc.ListGroup(items, id=ids.CASE_STUDIES)],
        **{"aria-label": "Case studies"},
    )


def _is_web_link(link: str | None) -> bool:
    """Say whether a stored link is a web address (never javascript: or data:)."""
    return bool(link) and str(link).lower().startswith(("https://", "http://"))


def downloads(data: SnapshotView) -> Any:
    """Return the download links, the licence and the citation line."""
    base = f"/api/v1/snapshots/{data.meta['id']}"
    return html.Footer(
        [
            html.H2("Take the data away", className="h4 mt-4"),
            html.P(
                [
                    "What is shown: ",
                    dbc.Button("CSV", id=ids.DOWNLOAD_SHOWN_CSV, size="sm", className="me-1"),
                    dbc.Button("JSON", id=ids.DOWNLOAD_SHOWN_JSON, size="sm", className="me-3"),
                    "The whole snapshot: ",
                    html.A(
                        "CSV", href=f"{base}?format=csv", className="me-1", id="download-all-csv"
                    ),
                    html.A("JSON", href=base, id="download-all-json"),
                ]
            ),
            html.P(
                [
                    "Licence: ",
                    html.A(LICENCE, href=LICENCE_URL, rel="license"),
                    ". Cite as: ",
                    html.Span(citation(data.meta), className="citation"),
                ],
                className="small",
            ),
        ],
        className="mb-5",
    )


def embed(data: SnapshotView, code: str, what: str) -> Any:
    """Return one tile or one chart, with no page chrome, for other websites to frame."""
    indicators = data.indicators()
    if code not in indicators:
        return message(f"There is no indicator {code!r} to embed.", color="warning")
    item = indicators[code]
    coverage = indicators.get("survey_response_rate", {}).get("cells", [])
    if what == "chart":
        series = figures.yearly(item["cells"])
        body = chart(
            figures.series_figure(series, f"{item['title']}, by year", item["unit"]),
            ids.SERIES,
            figures.describe_cells(series, item["unit"]),
        )
    else:
        body = tile(code, item, coverage)
    return html.Div(
        [
            body,
            html.P(
                [
                    f"Updated {data.meta['as_of']}. ",
                    html.A("Outcomes dashboard", href="/", target="_top"),
                    f", {LICENCE}.",
                ],
                className="small text-body-secondary mt-1 mb-0",
            ),
        ],
        id=ids.EMBED,
        className="p-2",
    )


def release_label(meta: dict[str, Any]) -> str:
    """Return how the public names a release: its title and the day it was released."""
    day = (meta.get("published_at") or meta["as_of"])[:10]
    return f"{meta['title']} ({day})"


def preview_note(data: SnapshotView, shown: Any) -> Any:
    """Return a page with the staff preview ribbon above it: this build is not public."""
    note = html.Div(
        f"Preview of build {data.meta['id']} (figures as of {data.meta['as_of']}): not released, "
        "not public. The link expires soon.",
        id="preview-note",
        className="demo-banner py-2 px-3 text-center fw-semibold",
        role="note",
    )
    return html.Div([note, shown])


def withdrawn(gone: ReleaseView) -> Any:
    """Return what a withdrawn release's address shows: why, and what replaces it."""
    replacement = (
        [
            " It is replaced by ",
            html.A(
                gone.replaced_by_title or "a newer release", href=f"/?snapshot={gone.replaced_by}"
            ),
            ".",
        ]
        if gone.replaced_by
        else []
    )
    return dbc.Container(
        [
            header(),
            dbc.Alert(
                [
                    html.Strong(f"{gone.label()} was withdrawn. "),
                    f"Reason: {gone.withdrawn_reason}",
                    *replacement,
                    " ",
                    html.A("Show the latest figures.", href="/"),
                    " ",
                    html.A("Release history.", href="/releases"),
                ],
                color="warning",
                id="withdrawn-release",
            ),
        ]
    )


def release_history(releases: list[ReleaseView]) -> Any:
    """Return the public history of releases: titles, dates, notes and withdrawals."""
    items = [
        html.Article(
            [
                html.H2(
                    html.A(r.label(), href=f"/?snapshot={r.id}")
                    if r.status == "released"
                    else r.label(),
                    className="h5",
                ),
                html.P(f"Figures as of {r.as_of}.", className="small text-body-secondary"),
                html.P(r.notes, style={"whiteSpace": "pre-line"}) if r.notes else None,
                dbc.Alert(
                    [
                        f"Withdrawn: {r.withdrawn_reason}",
                        *(
                            [
                                " Replaced by ",
                                html.A(r.replaced_by_title, href=f"/?snapshot={r.replaced_by}"),
                                ".",
                            ]
                            if r.replaced_by
                            else []
                        ),
                    ],
                    color="warning",
                    className="py-2",
                )
                if r.status == "withdrawn"
                else None,
            ],
            className="mb-4",
            id=f"release-{r.id}",
        )
        for r in releases
    ]
    return dbc.Container(
        [
            header(),
            html.H2("Release history", className="h3"),
            html.P(html.A("Show the latest figures.", href="/")),
            *(items or [html.P("Nothing has been released yet.")]),
        ],
        id="release-history",
    )
