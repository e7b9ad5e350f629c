"""Dashboard data on SQLite and PostgreSQL: snapshot diffs, the data API, what is never shown."""

import csv
import io
from datetime import date

import orjson

from dashboard import layout
from dashboard.callbacks import render
from outcomes.diff import previous_snapshot_id, snapshot_changes
from outcomes.models import CaseStudy
from tests.dashboard_cells import sample_cells
from tests.factories import make_snapshot


def changes_by_key(db, old: int, new: int) -> dict:
    return {
        (c.indicator, c.period, c.breakdown, c.category): c
        for c in snapshot_changes(db, old_id=old, new_id=new)
    }


def test_the_diff_names_changed_added_removed_and_newly_withheld_cells(settings, db):
    old = make_snapshot(
        db,
        [
            ("ps_certificates", "all", "total", "", 40, 12),
            ("ps_certificates", "all", "country", "DE", 25, 6),
            ("coc_certificates", "all", "total", "", 15, 9),
            ("board_meetings", "all", "total", "", 30, 30),
        ],
    ).id
    new = make_snapshot(
        db,
        [
            ("ps_certificates", "all", "total", "", 44, 13),
            ("ps_certificates", "all", "country", "DE", 2, 2),  # now withheld
            ("coc_certificates", "all", "total", "", 15, 9),  # unchanged
            ("auditing_firms", "all", "total", "", 25, 25),  # new indicator
        ],
    ).id
    db.commit()

    changes = changes_by_key(db, old, new)

    assert previous_snapshot_id(db, snapshot_id=new) == old
    assert set(changes) == {
        ("ps_certificates", "all", "total", ""),
        ("ps_certificates", "all", "country", "DE"),
        ("board_meetings", "all", "total", ""),
        ("auditing_firms", "all", "total", ""),
    }
    total = changes[("ps_certificates", "all", "total", "")]
    assert (total.old, total.new, total.delta, total.status) == (40, 44, 4, "changed")
    hidden = changes[("ps_certificates", "all", "country", "DE")]
    assert (hidden.new, hidden.delta, hidden.status) == (None, None, "suppressed")
    assert changes[("board_meetings", "all", "total", "")].status == "removed"
    assert changes[("auditing_firms", "all", "total", "")].status == "added"


def test_the_diff_skips_withdrawn_snapshots_and_refuses_to_compare_with_one(settings, db):
    first = make_snapshot(db, sample_cells(1)).id
    withdrawn = make_snapshot(db, sample_cells(5), status="withdrawn").id
    running = make_snapshot(db, sample_cells(7), status="running").id
    last = make_snapshot(db, sample_cells(2)).id
    db.commit()

    assert previous_snapshot_id(db, snapshot_id=last) == first
    assert snapshot_changes(db, old_id=withdrawn, new_id=last) == []
    assert snapshot_changes(db, old_id=first, new_id=running) == []


def test_the_api_never_serves_builds_withdrawn_releases_or_suppressed_values(
    settings, db, dashboard
):
    published = make_snapshot(db, sample_cells(1), as_of=date(2025, 1, 31)).id
    withdrawn = make_snapshot(
        db, sample_cells(9), status="withdrawn", withdrawn_reason="Counted twice."
    ).id
    running = make_snapshot(db, sample_cells(8), status="running").id
    built = make_snapshot(db, sample_cells(6), status="built").id
    db.commit()

    latest = dashboard.get("/api/v1/snapshots/latest").get_json()
    listed = [s["id"] for s in dashboard.get("/api/v1/snapshots").get_json()["snapshots"]]
    rows = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(
                    dashboard.get(f"/api/v1/snapshots/{published}?format=csv").text.splitlines()[2:]
                )
            )
        )
    )

    assert latest["snapshot"]["id"] == published
    assert listed == [published]
    gone = dashboard.get(f"/api/v1/snapshots/{withdrawn}")
    assert (gone.status_code, gone.get_json()["withdrawal_reason"]) == (410, "Counted twice.")
    assert "indicators" not in gone.get_json()
    assert dashboard.get(f"/api/v1/snapshots/{running}?format=csv").status_code == 404
    assert dashboard.get(f"/api/v1/snapshots/{built}").status_code == 404
    assert dashboard.get(f"/api/v1/snapshots/{built}?format=csv").status_code == 404
    assert latest["indicators"]["survey_grievance_mechanism"] == {
        **latest["indicators"]["survey_grievance_mechanism"],
        "value": None,
        "suppressed": True,
    }
    withheld = [r for r in rows if r["suppressed"] == "True"]
    assert {(r["indicator"], r["category"]) for r in withheld} == {
        ("ps_certificates", "IS"),
        ("survey_grievance_mechanism", ""),
    }
    assert all(r["value"] == "" for r in withheld)
    assert latest["licence"]["name"] == "CC BY 4.0"
    assert f"snapshot {published} as of 2025-01-31" in latest["citation"]


def test_bad_ids_and_formats_answer_json_errors_not_pages(settings, db, dashboard):
    make_snapshot(db, sample_cells(1))
    db.commit()

    answers = {
        url: dashboard.get(url)
        for url in (
            "/api/v1/snapshots/abc",
            "/api/v1/snapshots/99999",
            "/api/v1/snapshots/latest?format=xml",
            "/api/v1/no-such-thing",
        )
    }

    assert {u: a.status_code for u, a in answers.items()} == {
        "/api/v1/snapshots/abc": 400,
        "/api/v1/snapshots/99999": 404,
        "/api/v1/snapshots/latest?format=xml": 400,
        "/api/v1/no-such-thing": 404,
    }
    assert all(a.get_json()["errors"] for a in answers.values())


def test_the_page_never_shows_a_build_or_withdrawn_release_whatever_the_address_says(settings, db):
    current = make_snapshot(db, sample_cells(1))
    withdrawn = make_snapshot(
        db,
        sample_cells(9),
        status="withdrawn",
        withdrawn_reason="Two audits were counted twice.",
        replaced_by=current.id,
    ).id
    built = make_snapshot(db, sample_cells(8), status="built").id
    db.commit()

    page = str(render(settings.database_url, "/", f"?snapshot={withdrawn}"))
    embedded = str(
        render(settings.database_url, "/embed/ps_certificates", f"?snapshot={withdrawn}")
    )
    build_page = str(render(settings.database_url, "/", f"?snapshot={built}"))
    build_embed = str(render(settings.database_url, "/embed/ps_certificates", f"?snapshot={built}"))

    assert "was withdrawn" in page and "Two audits were counted twice." in page
    assert f"/?snapshot={current.id}" in page and current.title in page
    # The figures never show (40 certificates x 9, x 8); titles and ids may hold the digits.
    named = (current.title, f"snapshot={current.id}", f"snapshot={withdrawn}", f"release {built}")
    for text in named:
        page, embedded = page.replace(text, ""), embedded.replace(text, "")
    assert "360" not in page and "360" not in embedded
    assert "Two audits were counted twice." in embedded
    assert f"There is no release {built}" in build_page
    assert f"There is no release {built}" in build_embed
    for text in named:
        build_page, build_embed = build_page.replace(text, ""), build_embed.replace(text, "")
    assert "320" not in build_page and "320" not in build_embed


def test_the_page_answers_odd_addresses_with_a_message(settings, db):
    make_snapshot(db, sample_cells(1))
    db.commit()

    assert "There is no page at /admin" in str(render(settings.database_url, "/admin", ""))
    assert "no indicator 'nope'" in str(render(settings.database_url, "/embed/nope", ""))
    assert "Unknown filter" in str(render(settings.database_url, "/", "?a=1"))


def test_answers_are_compressed_for_clients_that_accept_it(settings, db, dashboard):
    make_snapshot(db, sample_cells(1))
    db.commit()

    answer = dashboard.get("/api/v1/snapshots/latest", headers={"Accept-Encoding": "gzip"})

    assert answer.headers["Content-Encoding"] == "gzip"


def shown(tree, id_: str):
    """Return the children of the component with an id in a page's JSON form, or None."""
    if isinstance(tree, list):
        return next((found for t in tree if (found := shown(t, id_)) is not None), None)
    if isinstance(tree, dict) and "props" in tree:
        if tree["props"].get("id") == id_:
            return tree["props"]["children"]
        return shown(tree["props"].get("children"), id_)
    return None


def test_a_country_filter_narrows_the_tiles_that_have_that_country_and_says_so_for_others(
    settings, db
):
    make_snapshot(db, sample_cells(1))
    db.commit()

    # What the page callback sends the browser.
    page = orjson.loads(
        orjson.dumps(layout.plain(render(settings.database_url, "/", "?country=BR")))
    )

    assert shown(page, "tile-value-ps_certificates") == "13"
    assert shown(page, "tile-value-people_in_ps_facilities") == "22,000"
    # coc_certificates has no countries: said in the tile's main text, not a global figure.
    assert shown(page, "tile-value-coc_certificates") == "not available"
    assert "Not available for Brazil" in str(page)


def test_the_embed_route_also_serves_one_chart(settings, db):
    make_snapshot(db, sample_cells(1))
    db.commit()

    embedded = str(render(settings.database_url, "/embed/ps_certificates/chart", ""))

    assert "Graph(id='series-chart'" in embedded
    assert "tile-value" not in embedded and "H1(" not in embedded


def test_case_studies_are_listed_with_country_and_only_web_links(settings, db):
    make_snapshot(db, sample_cells(1))
    db.add_all(
        [
            CaseStudy(
                title="Water stewardship", country="BR", summary="s", link="https://ex.org/a"
            ),
            CaseStudy(title="Sneaky", country="DE", summary="s", link="javascript:alert(1)"),
        ]
    )
    db.commit()

    page = str(render(settings.database_url, "/", ""))

    assert "Water stewardship" in page and "Brazil" in page
    assert "href='https://ex.org/a'" in page
    assert "Sneaky" in page and "javascript:" not in page


def test_a_filter_value_the_snapshot_has_no_figures_for_says_which_ones_it_has(settings, db):
    make_snapshot(db, sample_cells(1))
    db.commit()

    year = str(render(settings.database_url, "/", "?year=1999"))
    country = str(render(settings.database_url, "/", "?country=FR"))
    page = str(render(settings.database_url, "/indicator/ps_certificates", "?year=1999"))

    assert "no figures for year=1999: choose one of 2025, 2024, 2023" in year
    assert "no figures for country=FR: choose one of Brazil" not in country  # codes, not names
    assert "no figures for country=FR: choose one of BR, DE, IS" in country
    assert "has no figures for 1999: choose one of these years: 2023, 2024, 2025" in page
