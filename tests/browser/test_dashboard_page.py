"""The public page in a real headless Chromium, served the way compose serves it."""

import json
import urllib.request
from datetime import date
from pathlib import Path

from aggregator.build import build_snapshot, release_if_due
from outcomes.db import get_engine
from tests.conftest import serving
from tests.dashboard_cells import sample_cells
from tests.factories import make_certificate, make_member, make_snapshot

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WAIT = 20000
CHART_WAIT = 60000  # plotly.js loads lazily; on a busy 2-core machine that takes a while


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def get_json(url: str) -> dict:
    return json.loads(get(url))


def publish_two(db) -> tuple[int, int]:
    """Publish an older and a newer snapshot (values doubled) and a withdrawn one after them."""
    old = make_snapshot(db, sample_cells(1), as_of=date(2025, 1, 31))
    new = make_snapshot(db, sample_cells(2), as_of=date(2026, 1, 31), is_demo=True)
    make_snapshot(db, sample_cells(1000), status="withdrawn", as_of=date(2026, 2, 28))
    db.commit()
    return old.id, new.id


def open_page(browser, url: str):
    """Open a page and record every address it asks for."""
    page = browser.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.goto(url)
    return page


def test_the_page_says_so_before_the_first_snapshot(browser, settings):
    with serving("dashboard", settings) as base:
        page = browser.new_page()
        page.goto(base + "/")
        page.get_by_text("Nothing has been released yet").wait_for(timeout=WAIT)
        page.close()


def test_the_tile_shows_the_headline_value_of_the_latest_snapshot(browser, settings, db):
    member = make_member(db)
    for year in (2019, 2020, 2021, 2022):
        make_certificate(db, member=member, issued_on=date(year, 2, 1))
    db.commit()
    engine = get_engine(settings.database_url)
    built = build_snapshot(engine, trigger="test", force=True)
    assert release_if_due(engine, snapshot_id=built.snapshot_id, auto_release=True)

    with serving("dashboard", settings) as base:
        latest = get_json(base + "/api/v1/snapshots/latest")
        page = browser.new_page()
        page.goto(base + "/")
        tile = page.locator("#tile-value-ps_certificates")
        tile.wait_for(timeout=WAIT)

        assert latest["indicators"]["ps_certificates"]["value"] == 4
        assert tile.inner_text() == "4"
        assert page.locator("#as-of").inner_text() == latest["snapshot"]["as_of"]
        page.close()


def test_every_tile_shows_the_value_of_the_snapshot_json_and_withheld_ones_say_suppressed(
    browser, settings, db
):
    publish_two(db)
    with serving("dashboard", settings) as base:
        latest = get_json(base + "/api/v1/snapshots/latest")
        page = open_page(browser, base + "/")
        page.locator("#tile-value-ps_certificates").wait_for(timeout=WAIT)
        shown = {}
        for code, item in latest["indicators"].items():
            text = page.locator(f"#tile-value-{code}").inner_text()
            shown[code] = text
            if item["suppressed"]:
                assert text == "suppressed", code
            elif item["value"] is None:
                assert text == "no data", code
            else:
                assert float(text.replace(",", "").rstrip("%")) == round(item["value"], 1), code
        page.wait_for_load_state("networkidle")
        outside = [u for u in page.requested if not u.startswith(base)]
        plotly = [u.split("?")[0].rsplit("/", 1)[-1] for u in page.requested if "plotly" in u]
        page.close()

    assert shown["ps_certificates"] == "80"
    assert shown["survey_grievance_mechanism"] == "suppressed"
    assert shown["survey_women_share"] == "31.5"
    assert latest["snapshot"]["as_of"] == "2026-01-31"  # never the withdrawn one
    assert outside == []  # bootstrap, plotly and the map outlines are all served locally
    assert plotly == ["plotly-bar-choropleth.min.js"]  # the partial bundle, never the full one


def test_a_filter_changes_the_chart_and_the_address(browser, settings, db):
    publish_two(db)
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/")
        caption = page.locator("#series-chart-text")
        caption.wait_for(timeout=WAIT)
        before = caption.inner_text()
        page.select_option("#filter-year", "2024")
        page.wait_for_url("**year=2024**", timeout=WAIT)
        page.locator("#series-chart-text", has_not_text="2025").wait_for(timeout=WAIT)
        after = caption.inner_text()
        page.locator("#series-chart .bars .point").first.wait_for(timeout=CHART_WAIT)
        bars = page.locator("#series-chart .bars .point").count()
        page.close()

    assert "2025: 80" in before
    assert after == "2023: 40; 2024: 60."
    assert bars == 2


def test_a_shared_address_shows_its_filters_and_a_malformed_one_says_what_is_wrong(
    browser, settings, db
):
    publish_two(db)
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/?country=BR&indicator=people_in_ps_facilities")
        page.locator("#map-people-text").wait_for(timeout=WAIT)
        map_text = page.locator("#map-people-text").inner_text()
        chosen = page.locator("#filter-country").input_value()
        page.goto(base + "/?year=twenty")
        error = page.locator("#query-error")
        error.wait_for(timeout=WAIT)
        message = error.inner_text()
        page.close()

    assert map_text == "Brazil: 44,000."
    assert chosen == "BR"
    assert "year must be a four-digit year" in message
    assert "Traceback" not in message


def test_choosing_an_older_snapshot_shows_its_numbers_and_says_a_newer_one_exists(
    browser, settings, db
):
    old, _new = publish_two(db)
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/")
        page.locator("#tile-value-ps_certificates").wait_for(timeout=WAIT)
        assert page.locator("#newer-note").count() == 0
        changes = page.locator("#changes").inner_text()
        page.select_option("#choose-snapshot", str(old))
        page.wait_for_url(f"**snapshot={old}**", timeout=WAIT)
        page.locator("#newer-note").wait_for(timeout=WAIT)
        value = page.locator("#tile-value-ps_certificates").inner_text()
        note = page.locator("#newer-note").inner_text()
        page.close()

    assert f"What changed since snapshot {old}" in changes
    assert "40" in changes and "80" in changes
    assert value == "40"
    assert "A newer release exists" in note


def test_a_download_of_what_is_shown_matches_the_api(browser, settings, db):
    publish_two(db)
    with serving("dashboard", settings) as base:
        api_csv = get(base + "/api/v1/snapshots/latest?format=csv").decode()
        page = open_page(browser, base + "/")
        page.locator("#download-shown-csv").wait_for(timeout=WAIT)
        with page.expect_download(timeout=WAIT) as download:
            page.click("#download-shown-csv")
        shown_csv = Path(download.value.path()).read_text()
        page.close()

    assert shown_csv == api_csv
    assert api_csv.startswith("# Licence: CC BY 4.0")
    assert "Cite as: Outcomes dashboard, Release" in api_csv.splitlines()[1]


def test_the_embed_route_renders_one_tile_without_the_page_around_it(browser, settings, db):
    publish_two(db)
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/embed/coc_certificates")
        page.locator("#embed").wait_for(timeout=WAIT)
        tiles = page.locator(".card").count()
        value = page.locator("#tile-value-coc_certificates").inner_text()
        headings = page.locator("h1").count()
        page.close()

    assert (tiles, value, headings) == (1, "30", 0)


def test_axe_finds_no_serious_or_critical_accessibility_violation(browser, settings, db):
    publish_two(db)
    with serving("dashboard", settings) as base:
        # The page's Content-Security-Policy refuses injected scripts, axe's too.
        page = browser.new_page(bypass_csp=True)
        page.goto(base + "/")
        page.locator("#map-people .geolayer").wait_for(state="attached", timeout=CHART_WAIT)
        page.wait_for_load_state("networkidle")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document)")
        page.close()

    serious = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    assert result["passes"]  # axe really ran


def test_a_keyboard_user_keeps_the_focus_on_the_filter_after_the_page_updates(
    browser, settings, db
):
    publish_two(db)
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/")
        page.locator("#filter-year").wait_for(timeout=WAIT)
        page.focus("#filter-year")
        # A closed native select picks the first option starting with the key typed (the newest
        # year); one key, because type-ahead of several depends on how fast they arrive.
        page.keyboard.press("2")
        page.wait_for_url("**year=2025**", timeout=WAIT)
        page.wait_for_function(
            "() => document.activeElement && document.activeElement.id === 'filter-year'",
            timeout=WAIT,
        )
        chosen = page.locator("#filter-year").input_value()
        page.close()

    assert chosen == "2025"


def test_the_table_of_every_figure_sorts_by_a_column_and_says_so_in_the_address(
    browser, settings, db
):
    publish_two(db)
    values = "#indicator-table tbody td:nth-child(5)"
    with serving("dashboard", settings) as base:
        page = open_page(browser, base + "/")
        page.click("#indicator-table-sort-value")
        page.wait_for_url("**sort=value**", timeout=WAIT)
        page.locator("th[aria-sort=ascending] #indicator-table-sort-value").wait_for(timeout=WAIT)
        ascending = page.locator(values).all_inner_texts()
        page.focus("#indicator-table-sort-value")  # again, from the keyboard
        page.keyboard.press("Enter")
        page.wait_for_url("**sort=-value**", timeout=WAIT)
        page.locator("th[aria-sort=descending] #indicator-table-sort-value").wait_for(timeout=WAIT)
        descending = page.locator(values).all_inner_texts()
        page.wait_for_function(  # the rebuilt page gives the focus back to the heading
            "() => document.activeElement?.id === 'indicator-table-sort-value'", timeout=WAIT
        )
        page.close()

    # Withheld values (Iceland's certificates, the grievance mechanism) are blank and sort last.
    assert ascending[:3] == ["9", "10", "26"] and ascending[-2:] == ["", ""]
    assert descending[:2] == ["104,000", "60,000"] and descending[-2:] == ["", ""]
