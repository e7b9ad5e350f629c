"""Uploads and bodies past the size limit are refused with 413; nothing is read or written."""

import io

from collector import create_app
from tests.abuse.support import row_counts
from tests.collector.web import csrf_token, make_login, sign_in
from tests.factories import make_account

LIMIT = 2000
BIG_CSV = b"body,held_on\n" + b"board,2024-02-15\n" * 500  # 8.5 kB


def test_a_csv_past_the_limit_is_refused_with_413_by_api_and_by_upload_form(settings, db):
    token = make_account(db, role="staff")
    staff = make_login(db, role="staff")
    db.commit()
    client = create_app(settings.with_changes(max_request_bytes=LIMIT)).test_client()
    sign_in(client, staff)
    before = row_counts(db)

    by_api = client.post(
        "/api/v1/imports/meetings",
        data=BIG_CSV,
        content_type="text/csv",
        headers={"Authorization": f"Bearer {token}"},
    )
    by_form = client.post(
        "/staff/imports/meetings",
        data={
            "csrf_token": csrf_token(client, "/staff/imports"),
            "file": (io.BytesIO(BIG_CSV), "meetings.csv"),
        },
        content_type="multipart/form-data",
    )

    assert by_api.status_code == 413
    assert by_api.json["errors"]
    assert by_form.status_code == 413
    assert by_form.mimetype == "text/html"
    assert row_counts(db) == before


def test_deeply_nested_json_is_refused_with_a_message_not_a_server_error(collector, db):
    nested = "[" * 900 + "]" * 900  # parses (Python's limit is ~1,000), but is no application
    before = row_counts(db)

    answer = collector.post("/api/v1/applications", data=nested, content_type="application/json")

    assert answer.status_code == 422, answer.status_code
    assert answer.json["errors"]
    assert row_counts(db) == before


def test_json_nested_200000_deep_is_a_400_on_every_collector_route(collector, db):
    nested = "[" * 200_000 + "]" * 200_000  # Python's parser would recurse past its limit
    app = collector.application
    urls = app.url_map.bind("localhost")
    answers = {}
    for rule in app.url_map.iter_rules():
        for method in {"POST", "PUT"} & rule.methods:
            address = urls.build(rule.endpoint, dict.fromkeys(rule.arguments, 1), method=method)
            answer = collector.open(
                address, method=method, data=nested, content_type="application/json"
            )
            answers[method, address] = answer.status_code

    assert answers and set(answers.values()) == {400}, answers
