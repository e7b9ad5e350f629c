"""A request while the database is unreachable gets a 503 to retry, never a 500."""

from collector import create_app
from outcomes.runner import free_port
from tests.collector.web import post_form


def test_an_unreachable_database_answers_503_with_retry_after(settings):
    # A real connection attempt to a port where no database listens.
    gone = settings.with_changes(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port(0)}/outcomes"
    )
    client = create_app(gone).test_client()

    api = client.put(
        "/api/v1/surveys/2025", json={"answers": {}}, headers={"Authorization": "Bearer oc_x"}
    )
    page = post_form(client, "/login", {"email": "a@example.org", "password": "x" * 12})

    assert api.status_code == 503
    assert api.headers["Retry-After"] == "5"
    assert api.json["errors"]["request"] == ["The database is unavailable; retry in a few seconds."]
    assert page.status_code == 503
    assert "The database is unavailable" in page.get_data(as_text=True)
