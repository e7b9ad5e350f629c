"""Callbacks: read the inputs, query the cached snapshot, build the figures, return."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, no_update
from flask import has_request_context, request

from dashboard import ids, layout
from dashboard import indicator as indicator_page
from dashboard.data import (
    SnapshotView,
    changes_since,
    chosen_snapshot,
    load_snapshot,
    previous_id,
    release,
    releases,
    snapshots_and_case_studies,
)
from dashboard.export import to_csv, to_json
from dashboard.filters import QueryError, View, filter_cells, parse_query, to_query
from dashboard.numbers import published
from outcomes.releases import previewed_build

CONTROLS = (ids.SNAPSHOT, ids.INDICATOR, ids.YEAR, ids.COUNTRY, ids.STANDARD, ids.MEMBERSHIP_CLASS)


def preview_target(secret_key: str, view: View) -> int | None:
    """Return the build a view's preview token opens, or None if the token is not good for it."""
    build = previewed_build(secret_key, view.preview or "")
    return build if build is not None and view.snapshot in (None, build) else None


def previewed(url: str, secret_key: str, view: View) -> SnapshotView | None:
    """Return the build a view's preview token opens, or None if the token is not good for it."""
    build = preview_target(secret_key, view)
    return None if build is None else load_snapshot(url, build, build=True)


def render(url: str, pathname: str | None, search: str | None, secret_key: str = "") -> Any:
    """Return what an address shows: the page, an embedded part, or a helpful message."""
    try:
        view = parse_query(search)
        if not isinstance(pathname, str | None):  # the browser sends text; anyone can send more
            raise QueryError("the path must be text, such as /embed/ps_certificates.")
    except QueryError as error:
        return layout.message(f"This address cannot be shown: {error}", color="warning")
    parts = (pathname or "/").strip("/").split("/")
    if parts == ["releases"]:
        return layout.release_history(releases(url))
    snapshots, stories = snapshots_and_case_studies(url)
    if view.preview is not None:
        data = previewed(url, secret_key, view)
        if data is None:
            return layout.message(layout.PREVIEW_REFUSED, color="danger")
        snapshots = [data.meta]  # a preview shows only its build: nothing to choose
    else:
        data = chosen_snapshot(url, snapshots, view.snapshot)
    if data is None:
        if view.snapshot is None:
            return layout.no_snapshot()
        gone = release(url, view.snapshot)
        if gone is not None and gone.status == "withdrawn":
            return layout.withdrawn(gone)
        return layout.message(f"There is no release {view.snapshot}.", color="warning")
    if parts[0] == "embed" and len(parts) in (2, 3):
        return layout.embed(data, parts[1], parts[2] if len(parts) == 3 else "tile")
    if parts[0] == "indicator" and len(parts) == 2:
        origin = request.host_url if has_request_context() else "/"
        return indicator_page.page(data, parts[1], view, origin)
    if parts != [""]:
        return layout.message(f"There is no page at {pathname}.", color="warning")
    if problem := layout.unknown_choice(data, view):
        return layout.message(f"This address cannot be shown: {problem}", color="warning")
    previous = None if view.preview else previous_id(snapshots, data.meta["id"])
    shown = layout.page(
        data,
        view,
        snapshots=snapshots,
        changes=changes_since(url, previous, data.meta["id"]),
        stories=stories,
    )
    return layout.preview_note(data, shown) if view.preview else shown


def shown_indicator(
    url: str, pathname: str | None, search: str | None
) -> tuple[View, SnapshotView, str] | None:
    """Return the view, snapshot and indicator code an indicator page's address names, if any."""
    try:
        view = parse_query(search)
    except QueryError:
        return None
    data = load_snapshot(url, view.snapshot)
    code = (pathname or "").rstrip("/").rsplit("/", 1)[-1]
    if data is None or code not in data.indicators():
        return None
    return view, data, code


def register_callbacks(app: Dash, url: str, secret_key: str = "") -> None:
    """Attach the dashboard's callbacks to the app."""

    @app.callback(
        Output(ids.PAGE, "children"), Input(ids.URL, "pathname"), Input(ids.URL, "search")
    )
    def show(pathname: str | None, search: str | None) -> Any:
        """Render the address."""
        return layout.plain(render(url, pathname, search, secret_key))

    @app.callback(
        Output(ids.URL, "search"),
        *(Input(control, "value") for control in CONTROLS),
        Input(ids.CLEAR, "n_clicks"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def choose(snapshot, indicator, year, country, standard, membership_class, _clear, search):
        """Write the chosen snapshot and filters into the address, so the view can be shared."""
        # A rendered page's controls all fire at once with the values it shows; a reader changes
        # one. Writing those back would pin the latest snapshot in the address and render twice.
        if len(ctx.triggered_prop_ids) > 1:
            return no_update
        try:
            current = parse_query(search)
        except QueryError:
            current = View()
        view = current.with_(snapshot=snapshot, indicator=indicator)
        if ctx.triggered_id == ids.CLEAR:
            view = view.with_(year=None, country=None, standard=None, membership_class=None)
        else:
            view = view.with_(
                year=year, country=country, standard=standard, membership_class=membership_class
            )
        # Another choice keeps the table's order and starts it at its first page.
        return to_query(view.with_(page=None))

    # The page is rebuilt from the new address; give the keyboard focus back to the control or
    # link used (a filter, a table heading), remembered when the address changed.
    app.clientside_callback(
        # A slider's handle has no id of its own: remember the nearest element that has one.
        """(search) => {
            const active = document.activeElement;
            const named = active && active !== document.body && active.closest('[id]');
            return (named && named.id) || null;
        }""",
        Output(ids.FOCUS, "data"),
        Input(ids.URL, "search"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """(children, id) => {
            const named = id && document.getElementById(id);
            const focusable = 'input, select, textarea, button, a[href], [tabindex]';
            const control = named &&
                (named.matches(focusable) ? named : named.querySelector(focusable));
            if (control) { control.focus(); }
            return window.dash_clientside.no_update;
        }""",
        Output(ids.FOCUS, "data", allow_duplicate=True),
        Input(ids.PAGE, "children"),
        State(ids.FOCUS, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.URL, "search", allow_duplicate=True),
        Input(ids.INDICATOR_YEAR, "value"),
        State(ids.URL, "pathname"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def slide(position, pathname, search):
        """Write the year chosen on an indicator page's slider into the address."""
        shown = shown_indicator(url, pathname, search)
        if shown is None:
            return no_update
        view, data, code = shown
        year = indicator_page.year_of(position, indicator_page.years_of(data.indicators()[code]))
        # The slider also reports the value it was drawn with: that changes nothing.
        if year == view.year:
            return no_update
        return to_query(view.with_(year=year)) or "?"

    @app.callback(
        Output(ids.DOWNLOAD, "data", allow_duplicate=True),
        Input(ids.INDICATOR_CSV, "n_clicks"),
        State(ids.URL, "pathname"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def download_indicator(clicks, pathname, search):
        """Send the figures an indicator page shows (its year) as CSV."""
        # Dash calls this when the page inserts the button (the Download sits in the static
        # layout, so prevent_initial_call does not hold): only a click sends the file.
        shown = shown_indicator(url, pathname, search) if clicks else None
        if shown is None:
            return no_update
        view, data, code = shown
        period = view.year or "all"
        cells = [c for c in data.indicators()[code]["cells"] if c["period"] == period]
        name = f"outcomes-snapshot-{data.meta['id']}-{code}-{period}.csv"
        return dcc.send_string(to_csv(data.meta, cells, data.indicators()), name)

    # The chart as an image, drawn by plotly.js itself in the browser (no server-side renderer).
    for button, kind in ((ids.INDICATOR_PNG, "png"), (ids.INDICATOR_SVG, "svg")):
        app.clientside_callback(
            f"""(clicks) => {{
                const plot = document.querySelector('#{ids.INDICATOR_CHART} .js-plotly-plot');
                if (clicks && plot) {{
                    Plotly.downloadImage(plot, {{format: '{kind}', filename: 'outcomes-chart'}});
                }}
                return window.dash_clientside.no_update;
            }}""",
            Output(button, "n_clicks"),
            Input(button, "n_clicks"),
            prevent_initial_call=True,
        )

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.DOWNLOAD_SHOWN_CSV, "n_clicks"),
        Input(ids.DOWNLOAD_SHOWN_JSON, "n_clicks"),
        State(ids.URL, "search"),
        prevent_initial_call=True,
    )
    def download(_csv, _json, search):
        """Send the figures that match the current filters, as CSV or JSON."""
        try:
            view = parse_query(search)
        except QueryError:  # the page shows the same address's message instead of buttons
            return no_update
        if view.preview is not None:
            data = previewed(url, secret_key, view)
        else:
            data = load_snapshot(url, view.snapshot)
        if data is None or not ctx.triggered_id:
            return no_update
        cells = filter_cells(list(data.cells), view)
        name = f"outcomes-snapshot-{data.meta['id']}-shown"
        if ctx.triggered_id == ids.DOWNLOAD_SHOWN_CSV:
            return dcc.send_string(to_csv(data.meta, cells, data.indicators()), f"{name}.csv")
        shown = {c: i for c, i in data.indicators().items() if i["cells"]}
        selected = {
            c: {
                **i,
                "value": published(i["value"]),
                # At the precision the page shows, as in the CSV.
                "cells": [
                    {**x, "value": published(x["value"])} for x in cells if x["indicator"] == c
                ],
            }
            for c, i in shown.items()
        }
        body = to_json(data.meta, selected, filters=view.active_filters())
        return dcc.send_bytes(body, f"{name}.json")
