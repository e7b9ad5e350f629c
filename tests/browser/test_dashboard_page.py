"""The public page in a real headless Chromium, served the way compose serves it."""

import json
import urllib.request
from datetime import date

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from tests.conftest import serving
from tests.factories import make_certificate, make_member


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def test_the_page_says_so_before_the_first_snapshot(browser, settings):
    with serving("dashboard", settings) as base:
        page = browser.new_page()
        page.goto(base + "/")
        page.get_by_text("No published snapshot yet").wait_for(timeout=15000)
        page.close()


def test_the_tile_shows_the_headline_value_of_the_latest_snapshot(browser, settings, db):
    member = make_member(db)
    for year in (2019, 2020, 2021, 2022):
        make_certificate(db, member=member, issued_on=date(year, 2, 1))
    db.commit()
    build_snapshot(get_engine(settings.database_url), trigger="test", force=True)

    with serving("dashboard", settings) as base:
        latest = get_json(base + "/api/v1/snapshots/latest")
        page = browser.new_page()
        page.goto(base + "/")
        tile = page.locator("#tile-value-ps_certificates")
        tile.wait_for(timeout=15000)

        assert latest["indicators"]["ps_certificates"]["value"] == 4
        assert tile.inner_text() == "4"
        assert page.locator("#as-of").inner_text() == latest["snapshot"]["as_of"]
        page.close()
