"""Every web form refuses a missing or wrong CSRF token; both services send security headers."""

import pytest

from collector import create_app
from outcomes.config import Settings
from tests.abuse.support import row_counts
from tests.collector.web import csrf_token, make_login, sign_in

FORM_PAGES = {"public": "/login", "member": "/member/tokens", "staff": "/staff/imports"}


def web_posts(app) -> list[tuple[str, str]]:
    """Return (area, address) of every form the collector takes, path numbers filled in."""
    found = []
    urls = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/api/"):
            continue
        address = urls.build(rule.endpoint, dict.fromkeys(rule.arguments, 1), method="POST")
        area = address.split("/")[1]
        found.append((area if area in ("member", "staff") else "public", address))
    return sorted(found)


@pytest.fixture
def signed_in(settings, db):
    """A client per area: anonymous, a signed-in member and a signed-in staff member."""
    app = create_app(settings)
    clients = {"public": app.test_client(), "member": app.test_client(), "staff": app.test_client()}
    member, staff = make_login(db), make_login(db, role="staff")
    db.commit()
    sign_in(clients["member"], member)
    sign_in(clients["staff"], staff)
    return app, clients


def test_every_form_refuses_a_missing_wrong_or_foreign_csrf_token_and_writes_nothing(signed_in, db):
    app, clients = signed_in
    posts = web_posts(app)
    assert {area for area, _ in posts} == {"public", "member", "staff"}
    # A token is bound to its session: one from another visitor's session is no good either.
    foreign = csrf_token(create_app(app.extensions["outcomes_settings"]).test_client(), "/login")
    before = row_counts(db)
    for area, address in posts:
        client = clients[area]
        own = csrf_token(client, FORM_PAGES[area])
        for token in (None, "not-a-token", own[:-4] + "AAAA", foreign):
            data = {"reason": "x", "decision": "approve", "email": "a@b.c", "password": "p"}
            if token is not None:
                data["csrf_token"] = token
            answer = client.post(address, data=data)
            assert answer.status_code == 400, (address, token, answer.status_code)
            assert "CSRF" in answer.get_data(as_text=True), address
    assert row_counts(db) == before


def test_cookies_are_http_only_same_site_and_secure_only_when_configured(settings):
    plain = create_app(settings).test_client().get("/login").headers["Set-Cookie"]
    secure = create_app(settings.with_changes(secure_cookies=True)).test_client()
    cookie = secure.get("/login").headers["Set-Cookie"]

    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    # __Host-: HTTPS only, this host only (no Domain), every path.
    assert cookie.startswith("__Host-outcomes_session=")
    assert "Path=/;" in cookie and "Domain" not in cookie


def test_cookies_are_secure_by_default_outside_outcomes_run():
    # `outcomes run` (local development) turns it off: tests/integration/test_run_command.py.
    assert Settings.from_env({"SECRET_KEY": "k" * 40, "DATABASE_URL": "sqlite://"}).secure_cookies


def test_collector_pages_and_api_answers_carry_security_headers(collector, db):
    member = make_login(db)
    db.commit()
    sign_in(collector, member)
    answers = {
        "page": collector.get("/member"),
        "public page": collector.get("/apply"),
        "api document": collector.get("/api/openapi.json"),
        "api error": collector.get("/api/v1/applications"),
    }
    for name, answer in answers.items():
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert answer.headers["X-Frame-Options"] == "DENY", name
        assert answer.headers["Referrer-Policy"] == "same-origin", name
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, name
        assert "unsafe-inline" not in policy, name
    assert answers["page"].headers["Cache-Control"] == "no-store"


def test_dashboard_answers_carry_security_headers_and_only_embeds_may_be_framed(dashboard):
    answers = {
        "page": dashboard.get("/"),
        "api": dashboard.get("/api/v1/snapshots"),
        "api error": dashboard.get("/api/v1/snapshots/abc"),
        "callback": dashboard.get("/_dash-layout"),
    }
    for name, answer in answers.items():
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert answer.headers["X-Frame-Options"] == "DENY", name
        policy = answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, name
        scripts = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
        assert "unsafe-inline" not in scripts and "unsafe-eval" not in scripts, name
    embed = dashboard.get("/embed/ps_certificates")
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed.headers
    assert "frame-ancestors" not in embed.headers["Content-Security-Policy"]
    assert "script-src 'self'" in embed.headers["Content-Security-Policy"]
