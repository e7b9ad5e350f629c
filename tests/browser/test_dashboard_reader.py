"""The reader's view of the demo data in Chromium: filters, maps, numbers, the indicator page."""

import re
import urllib.error
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest

from aggregator.build import build_snapshot, release_if_due
from dashboard.numbers import format_value
from outcomes.db import get_engine
from outcomes.demo import load_demo
from tests.browser.test_dashboard_page import CHART_WAIT, WAIT, get, get_json
from tests.conftest import serving

SCIENTIFIC = re.compile(r"\de[+-]\d")


def publish_demo(settings, db) -> None:
    """Load the demo data set, build it and release the build."""
    load_demo(db, today=date(2026, 11, 30))
    db.commit()
    engine = get_engine(settings.database_url)
    built = build_snapshot(engine, trigger="test", force=True)
    assert release_if_due(engine, snapshot_id=built.snapshot_id, auto_release=True)


def own_standard(code: str) -> str | None:
    return next((s for s in ("PS", "CoC") if code.startswith(f"{s.lower()}_")), None)


def api_cell(code: str, cells: list[dict], key: str, value: str) -> dict | None:
    """Return the API's cell for one filter, or None where the indicator has none for it."""
    wanted = {
        "year": (value, "total", ""),
        "country": ("all", "country", value),
        "membership_class": ("all", "membership_class", value),
        "standard": ("all", "standard", value),
    }[key]
    if key == "standard" and own_standard(code):
        wanted = ("all", "total", "") if own_standard(code) == value else None
    return next((c for c in cells if (c["period"], c["breakdown"], c["category"]) == wanted), None)


def filter_values(cells: list[dict]) -> dict[str, str]:
    """Return, for each filter, a value the demo snapshot has cells for."""

    def most(breakdown: str) -> str:
        found = [c["category"] for c in cells if c["breakdown"] == breakdown]
        return max(sorted(set(found)), key=found.count)

    years = sorted({c["period"] for c in cells if c["period"].isdigit()})
    return {
        "year": years[-2],  # not the latest: the headline is the latest year's
        "country": most("country"),
        "standard": "CoC",
        "membership_class": most("membership_class"),
    }


def test_every_tile_shows_the_api_cell_of_each_filter_or_says_it_is_unavailable(
    browser, settings, db
):
    publish_demo(settings, db)
    with serving("dashboard", settings) as base:
        latest = get_json(base + "/api/v1/snapshots/latest")
        indicators = latest["indicators"]
        cells = [c for i in indicators.values() for c in i["cells"]]
        page = browser.new_page()
        seen = {}
        for key, value in filter_values(cells).items():
            page.goto(base + "/?" + urlencode({key: value}))
            page.locator("#tile-value-ps_certificates").wait_for(timeout=WAIT)
            body = page.locator("body").inner_text()
            for code, item in indicators.items():
                text = page.locator(f"#tile-value-{code}").inner_text()
                cell = api_cell(code, item["cells"], key, value)
                if cell is None or (key == "country" and item["unit"] == "countries"):
                    expected = "not available"
                    greyed = page.locator(f"#tile-{code}.bg-light").count()
                    assert greyed == 1, (key, code)
                else:
                    expected = format_value(
                        cell["value"], item["unit"], suppressed=cell["suppressed"]
                    )
                seen[(key, code)] = (text, expected)
            assert not SCIENTIFIC.search(body), (key, SCIENTIFIC.search(body))
        page.close()

    wrong = {k: v for k, v in seen.items() if v[0] != v[1]}
    assert wrong == {}
    shown = {v[0] for v in seen.values()}
    assert "not available" in shown and len(shown) > 5  # some figures of each kind


def test_the_map_is_darker_for_more_and_draws_withheld_and_missing_countries(browser, settings, db):
    publish_demo(settings, db)
    with serving("dashboard", settings) as base:
        latest = get_json(base + "/api/v1/snapshots/latest")
        page = browser.new_page()
        page.goto(base + "/")
        page.locator("#map-people .choroplethlocation").first.wait_for(
            state="attached", timeout=CHART_WAIT
        )
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('#map-people g.trace')].map(
                (trace) => [...trace.querySelectorAll('.choroplethlocation')].map((path) => ({
                    loc: path.__data__.loc, z: path.__data__.z, fill: getComputedStyle(path).fill,
                })))"""
        )
        land = page.locator("#map-people .geo .land").count()
        key = page.locator("#map-people-key").inner_text()
        modebar = page.locator("#map-people .modebar").count()
        page.close()

    country = [
        c
        for c in latest["indicators"]["people_in_ps_facilities"]["cells"]
        if (c["period"], c["breakdown"]) == ("all", "country")
    ]
    withheld, shown = drawn

    def darkness(fill: str) -> float:
        red, green, blue = (int(n) for n in re.findall(r"\d+", fill)[:3])
        return -(0.2126 * red + 0.7152 * green + 0.0722 * blue)

    darkest = max(shown, key=lambda p: darkness(p["fill"]))
    assert darkest["z"] == max(p["z"] for p in shown)
    assert max(c["value"] or 0 for c in country) == darkest["z"]
    assert len(withheld) == sum(c["suppressed"] for c in country) > 0
    assert land == 1  # the base map: every other country is drawn, as "no data"
    assert "no data" in key and "suppressed" in key
    assert modebar == 0


def test_the_indicator_page_has_tabs_a_slider_and_downloads(browser, settings, db, tmp_path):
    publish_demo(settings, db)
    code = "people_in_ps_facilities"
    with serving("dashboard", settings) as base:
        page = browser.new_page(accept_downloads=True)
        unasked = []

        def unasked_download(download):
            unasked.append(download.suggested_filename)

        page.on("download", unasked_download)
        page.goto(base + f"/indicator/{code}")
        page.locator("#indicator-chart .bars .point").first.wait_for(timeout=CHART_WAIT)
        page.wait_for_load_state("networkidle")
        page.remove_listener("download", unasked_download)
        source = page.locator("#indicator-source").inner_text()
        with page.expect_download(timeout=WAIT) as png:
            page.click("#indicator-png")
        with page.expect_download(timeout=WAIT) as svg:
            page.click("#indicator-svg")
        page.get_by_role("tab", name="Map").click()
        page.locator("#indicator-map .choroplethlocation").first.wait_for(
            state="attached", timeout=CHART_WAIT
        )
        page.get_by_role("tab", name="Table").click()
        page.locator("#indicator-page-table").wait_for(timeout=WAIT)
        with page.expect_download(timeout=WAIT) as csv:
            page.click("#indicator-csv")
        csv_text = Path(csv.value.path()).read_text()
        link = page.locator("#indicator-link").input_value()
        embed = page.locator("#indicator-embed").input_value()
        # The slider, from the keyboard: one step back from the latest figures is the last year.
        page.get_by_role("slider").first.focus()
        page.keyboard.press("ArrowLeft")
        page.wait_for_url("**year=**", timeout=WAIT)
        year = page.url.rsplit("year=", 1)[1]
        page.locator("#indicator-chart-text").wait_for(timeout=WAIT)
        caption = page.locator("#indicator-chart-text").inner_text()
        page.goto(base + f"/indicator/{code}?year=1900")
        message = page.locator("#query-error").inner_text()
        images = [Path(d.value.path()).read_bytes() for d in (png, svg)]
        page.close()
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(base + "/embed/nope")
        missing_text = missing.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as missing_page:
            get(base + "/indicator/nope")

    assert unasked == [], "opening the page sent a file nobody asked for"
    assert "Source: certification register" in source and "How it is counted" in source
    assert images[0].startswith(b"\x89PNG") and b"<svg" in images[1][:500]
    assert csv_text.startswith("# Licence")
    assert '"people_in_ps_facilities","People working in PS-certified facilities","people"' in (
        csv_text
    )
    assert link == f"{base}/indicator/{code}" and f"/embed/{code}/chart" in embed
    assert year.isdigit() and caption.split("; ")[-1].startswith(f"{year}: ")
    assert "choose one of these years" in message
    assert missing.value.code == 404 and "no indicator 'nope'" in missing_text
    assert missing_page.value.code == 404
