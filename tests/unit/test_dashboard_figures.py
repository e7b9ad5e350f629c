"""The dashboard's pure parts: formatting, the view in the URL, filters, figures; no browser."""

import plotly.graph_objects
import pytest
from dash._utils import to_json

from dashboard import figures, layout
from dashboard.data import SnapshotView
from dashboard.filters import (
    QueryError,
    View,
    filter_cells,
    parse_query,
    selection_cell,
    to_query,
)
from dashboard.numbers import change_text, format_value, number_text, published


def cell(indicator="ps_certificates", period="all", breakdown="total", category="", value=1.0):
    return {
        "indicator": indicator,
        "period": period,
        "breakdown": breakdown,
        "category": category,
        "value": value,
        "contributors": 5,
        "suppressed": value is None,
    }


def test_a_withheld_value_reads_suppressed_and_never_zero():
    assert format_value(None, "certificates", suppressed=True) == "suppressed"
    assert format_value(0, "certificates", suppressed=True) == "suppressed"
    assert format_value(0, "certificates") == "0"
    assert format_value(52000, "people") == "52,000"
    assert format_value(37.66, "%") == "37.7%"


def test_numbers_read_as_people_write_them_never_in_scientific_notation():
    assert format_value(1_882_624.5, "t CO2e") == "1,882,624"
    assert format_value(72.22222222222221, "%") == "72.2%"
    assert change_text(-17020.0, "people") == "-17,020"
    assert change_text(1.363, "%") == "+1.4 pp"
    assert change_text(0, "firms") == "0"
    assert published(72.22222222222221) == 72.2 and published(1e7 + 0.4) == 10_000_000
    assert number_text(1.5e20) == "150,000,000,000,000,000,000"


def test_a_view_survives_the_round_trip_through_the_address():
    view = View(
        snapshot=7,
        year="2024",
        country="BR",
        membership_class="Civil Society",
        sort="-value",
        page=3,
    )
    assert parse_query(to_query(view)) == view
    assert to_query(View()) == ""


@pytest.mark.parametrize(
    ("search", "hint"),
    [
        ("?year=twenty", "four-digit year"),
        ("?country=XX", "two-letter ISO 3166 code"),
        ("?standard=ISO", "one of PS, CoC"),
        ("?snapshot=abc", "snapshot number"),
        ("?colour=red", "Unknown filter colour"),
        ("?year=2024&year=2025", "once"),
        ("?indicator=DROP%20TABLE", "indicator code"),
        ("?snapshot=%C2%B2", "snapshot number"),
        ("?sort=colour", "column of the table"),
        ("?page=0", "page number"),
        ("?page=%C2%B2", "page number"),
    ],
)
def test_a_malformed_address_raises_a_message_that_says_what_to_fix(search, hint):
    with pytest.raises(QueryError, match=hint):
        parse_query(search)


def test_filters_keep_only_the_cells_they_name():
    cells = [
        cell(),
        cell(period="2024"),
        cell(breakdown="country", category="DE"),
        cell(breakdown="country", category="BR"),
        cell(indicator="coc_certificates"),
        cell(indicator="members_by_class", breakdown="membership_class", category="Civil Society"),
    ]
    assert filter_cells(cells, View(year="2024")) == [cells[1]]
    assert filter_cells(cells, View(country="BR")) == [cells[3]]
    assert filter_cells(cells, View(standard="CoC")) == [cells[4]]
    assert filter_cells(cells, View(membership_class="Civil Society")) == [cells[5]]
    assert filter_cells(cells, View(country="BR", membership_class="Civil Society")) == []


def test_the_series_is_yearly_in_order_and_stops_at_the_chosen_year():
    cells = [cell(period=y, value=float(y[-1])) for y in ("2025", "2023", "2024")] + [cell()]
    assert [c["period"] for c in figures.yearly(cells)] == ["2023", "2024", "2025"]
    assert [c["period"] for c in figures.yearly(cells, up_to="2024")] == ["2023", "2024"]
    fig = figures.series_figure(figures.yearly(cells), "PS certificates", "certificates")
    assert plotly.graph_objects.Figure(fig).data[0].type == "bar"  # plotly accepts it
    assert fig["data"][0]["x"] == ["2023", "2024", "2025"]
    assert fig["data"][0]["y"] == [3.0, 4.0, 5.0]


def test_the_map_shades_values_darker_for_more_and_draws_withheld_countries_in_grey():
    cells = [
        cell(breakdown="country", category="DE", value=25.0),
        cell(breakdown="country", category="IS", value=None),
    ]
    fig = figures.map_figure(cells, "Where", "certificates")
    withheld, shown = plotly.graph_objects.Figure(fig).data  # plotly accepts it
    assert (withheld.locationmode, shown.locationmode) == ("ISO-3", "ISO-3")
    assert list(shown.locations) == ["DEU"] and list(withheld.locations) == ["ISL"]
    scale = fig["data"][1]["colorscale"]
    assert scale[0][1] == figures.SEQUENTIAL[0][1] and scale[-1][1] == "#08306b"  # more: darker
    assert fig["layout"]["geo"]["showland"] and fig["layout"]["geo"]["landcolor"] == figures.NO_DATA
    assert figures.describe_cells(cells, "certificates", key="category") == (
        "Germany: 25; Iceland: suppressed."
    )


def test_breakdown_names_leave_out_totals_coverage_and_countries():
    cells = [
        cell(),
        cell(breakdown="kind", category="full"),
        cell(breakdown="coverage", category="members"),
        cell(breakdown="country", category="DE"),
    ]
    assert figures.breakdown_names(cells) == ["kind"]


def test_a_tile_under_filters_takes_the_cell_of_that_selection_or_none():
    cells = [
        cell(value=40.0),
        cell(period="2024", value=30.0),
        cell(breakdown="country", category="BR", value=13.0),
        cell(breakdown="membership_class", category="Civil Society", value=3.0),
    ]

    def pick(code="ps_certificates", **filters):
        found = selection_cell(code, cells, View(**filters))
        return found and found["value"]

    assert pick(year="2024") == 30.0
    assert pick(country="BR") == 13.0
    assert pick(year="2024", country="BR") is None
    assert pick(country="DE") is None
    assert pick(country="BR", membership_class="Civil Society") is None  # no cell crosses two
    assert pick(standard="PS") == 40.0  # the indicator is about that standard
    assert pick(standard="CoC") is None
    assert pick("members_by_class", standard="PS") is None


def test_the_table_sorts_by_a_column_either_way_with_withheld_values_last():
    rows = [{"value": 2.0}, {"value": None}, {"value": 10.0}, {"value": 1.0}]
    assert [r["value"] for r in figures.sort_rows(rows, "value")] == [1.0, 2.0, 10.0, None]
    assert [r["value"] for r in figures.sort_rows(rows, "-value")] == [10.0, 2.0, 1.0, None]
    assert figures.sort_rows(rows, None) == rows


def test_the_table_shows_one_page_of_figures_with_links_to_the_others():
    cells = tuple(cell(period=str(2000 + n), value=float(n)) for n in range(60))
    data = SnapshotView(meta={"id": 1}, cells=cells)
    indicators = data.indicators()

    first = to_json(layout.table(indicators, View(sort="-value"), data))
    last = to_json(layout.table(indicators, View(sort="-value", page=9), data))

    assert "Figures 1-25 of 60 (page 1 of 3)" in first
    assert '"children":"59"' in first and '"children":"34"' not in first
    assert "?sort=-value&page=2" in first and "indicator-table-previous" not in first
    assert "Figures 51-60 of 60 (page 3 of 3)" in last  # a page past the end shows the last
    assert '"children":"9"' in last and "indicator-table-next" not in last
