"""The dashboard has no OpenAPI document: a property sweep over its addresses and data API."""

from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import ids
from dashboard.filters import KEYS
from tests.abuse.support import page_answer
from tests.dashboard_cells import sample_cells
from tests.factories import make_snapshot

SWEEP = settings(
    max_examples=150,
    derandomize=True,  # the same addresses on every run, so CI is reproducible
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
# What people and scanners put into addresses, beside whatever hypothesis makes up.
NASTY = [
    "",
    "0",
    "-1",
    "2147483648",
    "99999999999",
    "9" * 40,
    "²",
    "١٢",
    "2024 ",
    "de",
    "PS\x00",
    "' OR 1=1 --",
    "1; DROP TABLE snapshot; --",
    "%27",
    "\u2019 OR \u20181\u2019=\u20181",
    "<script>alert(1)</script>",
    "../../etc/passwd",
]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(["format", "snapshot[]", "x"]))
queries = st.dictionaries(keys, values, max_size=4).map(lambda q: "?" + urlencode(q))
paths = st.one_of(
    st.just("/"),
    st.sampled_from(["/embed/ps_certificates", "/embed/ps_certificates/chart"]),
    st.builds(lambda part: "/embed/" + quote(part, safe=""), values),
    st.builds(lambda part: "/" + quote(part, safe=""), values),
)


def publish(db) -> int:
    snapshot = make_snapshot(db, sample_cells(1))
    db.commit()
    return snapshot.id


def test_every_filter_with_every_nasty_value_renders_a_page_or_a_message(dashboard, db):
    publish(db)
    for key in (*KEYS, "format"):
        for value in NASTY:
            search = "?" + urlencode({key: value})
            answer = page_answer(dashboard, "/", search)
            assert answer.status_code == 200, (search, answer.get_data(as_text=True)[:300])
            answer = dashboard.get(f"/api/v1/snapshots/latest{search}")
            assert answer.status_code in (200, 400), (search, answer.status_code)


def test_any_address_renders_a_page_or_a_message_never_an_error(dashboard, db):
    publish(db)

    @given(path=paths, search=st.one_of(queries, values))
    @SWEEP
    def check(path, search):
        answer = page_answer(dashboard, path, search)
        assert answer.status_code == 200, (path, search, answer.get_data(as_text=True)[:300])

    check()


def test_the_data_api_answers_any_id_and_format_with_data_or_a_json_error(dashboard, db):
    published = publish(db)

    @given(
        snapshot=st.one_of(st.just(str(published)), st.just("latest"), values),
        query=st.one_of(queries, st.sampled_from(["?format=csv", "?format=json"])),
    )
    @SWEEP
    def check(snapshot, query):
        address = f"/api/v1/snapshots/{quote(snapshot, safe='')}{query}"
        answer = dashboard.get(address)
        # A preview token that is not good for the id is refused, whatever it holds.
        refused = (403,) if "preview=" in query else ()
        assert answer.status_code in (200, 400, 404, *refused), (address, answer.status_code)
        if answer.status_code != 200:
            assert answer.get_json()["errors"], address

    check()


def download_answer(client, search):
    """POST the download callback's inputs to Dash, as a click on "CSV of what is shown" does."""
    body = {
        "output": "download.data",
        "outputs": {"id": ids.DOWNLOAD, "property": "data"},
        "inputs": [
            {"id": ids.DOWNLOAD_SHOWN_CSV, "property": "n_clicks", "value": 1},
            {"id": ids.DOWNLOAD_SHOWN_JSON, "property": "n_clicks", "value": None},
        ],
        "changedPropIds": [f"{ids.DOWNLOAD_SHOWN_CSV}.n_clicks"],
        "state": [{"id": ids.URL, "property": "search", "value": search}],
    }
    return client.post("/_dash-update-component", json=body)


def test_the_url_callback_answers_lists_and_long_queries_with_a_message(dashboard, db):
    publish(db)
    many = "?" + "&".join(f"year={n}" for n in range(21))

    for pathname, search in ((["/", "x"], ""), ("/", ["?year=2024"]), ("/", many)):
        answer = page_answer(dashboard, pathname, search)
        assert answer.status_code == 200, (pathname, search, answer.status_code)
        assert "cannot be shown" in answer.get_data(as_text=True)


def test_the_download_callback_answers_a_bad_snapshot_with_nothing_not_an_error(dashboard, db):
    publish(db)

    bad = download_answer(dashboard, "?snapshot=abc")
    good = download_answer(dashboard, "")

    assert bad.status_code in (200, 204), bad.status_code  # Dash's "nothing to update"
    assert "outcomes-snapshot-" not in bad.get_data(as_text=True)
    assert good.status_code == 200 and "outcomes-snapshot-" in good.get_data(as_text=True)


def test_the_dashboard_refuses_a_request_body_past_its_limit_before_reading_it(dashboard):
    answer = dashboard.post(
        "/_dash-update-component", data=b"[" * (2 * 1024 * 1024), content_type="application/json"
    )
    assert answer.status_code == 413
