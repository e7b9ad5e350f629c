"""Signing in to the web pages: passwords, CSRF, rate limits, cookies, headers, roles."""

from sqlalchemy import select

from collector import create_app
from outcomes.models import AuditLog
from tests.collector.web import PASSWORD, csrf_token, make_login, post_form, sign_in


def test_a_member_signs_in_with_the_right_password_and_lands_on_its_surveys(collector, db):
    user = make_login(db)
    db.commit()

    answer = sign_in(collector, user)

    assert answer.headers["Location"].endswith("/member")
    assert collector.get("/member").status_code == 200
    assert db.scalar(select(AuditLog.action)) == "session.login"


def test_a_wrong_password_is_refused_with_a_message_and_no_session(collector, db):
    user = make_login(db)
    db.commit()

    answer = post_form(collector, "/login", {"email": user.email, "password": "wrong password!"})

    assert answer.status_code == 401
    assert "do not match" in answer.get_data(as_text=True)
    assert collector.get("/member").status_code == 302


def test_a_form_posted_without_its_csrf_token_is_refused(collector, db):
    user = make_login(db)
    db.commit()

    answer = collector.post("/login", data={"email": user.email, "password": PASSWORD})

    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    assert collector.get("/member").status_code == 302


def test_repeated_failed_sign_ins_get_429_even_with_the_right_password_after(collector, db):
    user = make_login(db)
    db.commit()
    for _ in range(5):
        wrong = post_form(collector, "/login", {"email": user.email, "password": "not it at all"})
        assert wrong.status_code == 401

    answer = post_form(collector, "/login", {"email": user.email, "password": PASSWORD})

    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.get_data(as_text=True)


def test_the_session_cookie_is_http_only_same_site_and_secure_when_configured(settings, db):
    user = make_login(db)
    db.commit()
    client = create_app(settings.with_changes(secure_cookies=True)).test_client()
    token = csrf_token(client, "/login")

    answer = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )

    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie


def test_pages_carry_security_headers_and_are_not_cached(collector):
    answer = collector.get("/login")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_signing_out_ends_the_session(collector, db):
    user = make_login(db)
    db.commit()
    sign_in(collector, user)

    answer = post_form(collector, "/logout", {}, token_from="/member")

    assert answer.status_code == 302
    assert collector.get("/member").status_code == 302


def test_anonymous_visitors_are_sent_to_sign_in_and_members_may_not_see_staff_pages(collector, db):
    member = make_login(db)
    db.commit()

    assert collector.get("/staff/applications").headers["Location"].startswith("/login?next=")
    sign_in(collector, member)
    assert collector.get("/staff/applications").status_code == 403


def test_a_staff_member_cannot_use_member_pages(collector, db):
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)
    assert collector.get("/member").status_code == 403


def test_sign_in_never_redirects_to_another_site(collector, db):
    user = make_login(db)
    db.commit()
    token = csrf_token(collector, "/login")

    answer = collector.post(
        "/login?next=//evil.example/x",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )

    assert answer.headers["Location"] == "/member"


def test_an_oversized_api_body_gets_a_413_json_error(settings):
    client = create_app(settings.with_changes(max_request_bytes=1000)).test_client()

    answer = client.post("/api/v1/applications", data="x" * 5000, content_type="application/json")

    assert answer.status_code == 413
    assert answer.json["errors"]


def test_an_unknown_page_is_an_html_404_and_an_unknown_api_route_a_json_404(collector):
    page = collector.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert collector.get("/api/v1/no-such-thing").json["errors"]
