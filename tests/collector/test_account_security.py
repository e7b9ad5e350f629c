"""Sessions end on the server; one-time passwords, admins, a second factor, throttles, tokens."""

import time
from datetime import timedelta

import pyotp
from sqlalchemy import select, update

from collector import create_app
from outcomes.accounts import AccountError, create_token, create_user
from outcomes.models import ApiToken, Mail, User, WebSession, utcnow
from tests.collector.web import PASSWORD, csrf_token, make_login, post_form, sign_in, writing
from tests.factories import make_member

NEW_PASSWORD = "violet lantern orbit quarry"


def copy_cookies(source, target) -> None:
    """Give another client the same cookies, as someone who copied them would."""
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_copied_session_cookie_stops_working_once_its_owner_signs_out(collector, db):
    user = make_login(db)
    db.commit()
    sign_in(collector, user)
    thief = collector.application.test_client()
    copy_cookies(collector, thief)
    assert thief.get("/member").status_code == 200

    post_form(collector, "/logout", {}, token_from="/member")

    assert thief.get("/member").status_code == 302
    db.rollback()
    assert db.scalar(select(WebSession).where(WebSession.user_id == user.id)) is None


def test_a_session_ends_after_30_idle_minutes_and_8_hours_in_all(collector, db):
    user = make_login(db)
    db.commit()
    for column, age in (("seen_at", timedelta(minutes=31)), ("created_at", timedelta(hours=9))):
        sign_in(collector, user)
        assert collector.get("/member").status_code == 200
        writing(db)
        db.execute(update(WebSession).values({column: utcnow() - age}))
        db.commit()

        assert collector.get("/member").status_code == 302, column


def test_changing_the_password_ends_every_other_session_and_refuses_common_ones(collector, db):
    user = make_login(db)
    db.commit()
    sign_in(collector, user)
    other = collector.application.test_client()
    sign_in(other, user)
    form = {"current": PASSWORD, "new": "password1234"}

    common = post_form(collector, "/account/password", form)
    changed = post_form(collector, "/account/password", {**form, "new": NEW_PASSWORD})

    assert common.status_code == 400
    assert "too easy to guess" in common.get_data(as_text=True)
    assert changed.status_code == 302
    assert collector.get("/member").status_code == 200
    assert other.get("/member").status_code == 302
    post_form(collector, "/logout", {}, token_from="/member")
    sign_in(collector, user, NEW_PASSWORD)


def test_common_passwords_are_refused_with_a_message_that_says_why(db):
    writing(db)
    for weak in ("password1234", "qwertyuiop12", "aaaaaaaaaaaa"):
        try:
            create_user(db, email="weak@example.org", password=weak, role="staff")
        except AccountError as error:
            assert "too easy to guess" in str(error)
        else:
            raise AssertionError(f"{weak!r} was accepted")


def test_only_admins_manage_accounts_and_a_reset_ends_sessions_and_tokens(settings, db):
    member = make_login(db)
    other_staff = make_login(db, role="staff")
    staff, admin = make_login(db, role="staff"), make_login(db, role="staff", admin=True)
    token = create_token(db, user=member, name="script")
    db.commit()
    app = create_app(settings)
    by_staff, by_admin, members_browser = (app.test_client() for _ in range(3))
    sign_in(by_staff, staff)
    sign_in(by_admin, admin)
    sign_in(members_browser, member)

    assert by_staff.get("/staff/accounts").status_code == 403
    csrf = csrf_token(by_staff, "/staff")
    refused = by_staff.post(f"/staff/accounts/{other_staff.id}/password", data={"csrf_token": csrf})
    reset = post_form(
        by_admin, f"/staff/accounts/{member.id}/password", {}, token_from="/staff/accounts"
    )

    assert refused.status_code == 403
    assert reset.status_code == 200 and 'id="new-password"' in reset.get_data(as_text=True)
    assert members_browser.get("/member").status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/surveys/2025", headers=bearer).status_code == 401
    db.rollback()
    mailed = db.scalars(select(Mail).where(Mail.to_address == member.email)).one()
    assert mailed.kind == "account"
    link = mailed.body[mailed.body.index("/account/set-password/") :].split()[0]
    assert "Set your password" in app.test_client().get(link).get_data(as_text=True)


def test_a_one_time_password_must_be_replaced_at_first_use_and_expires(collector, db):
    writing(db)
    member = make_member(db)
    user = create_user(
        db,
        email="new@example.org",
        password="x7-one-time-pw",
        role="member",
        member_id=member.id,
        one_time=True,
    )
    db.commit()

    sign_in(collector, user, "x7-one-time-pw")
    forced = collector.get("/member")
    changed = post_form(
        collector, "/account/password", {"current": "x7-one-time-pw", "new": NEW_PASSWORD}
    )

    assert forced.headers["Location"].endswith("/account/password")
    assert changed.headers["Location"].endswith("/member")
    assert collector.get("/member").status_code == 200
    writing(db)
    db.execute(
        update(User)
        .where(User.id == user.id)
        .values(must_change_password=True, password_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.commit()
    client = collector.application.test_client()
    expired = post_form(client, "/login", {"email": user.email, "password": NEW_PASSWORD})
    assert expired.status_code == 401
    assert "expired" in expired.get_data(as_text=True)


def test_staff_set_up_a_second_factor_and_then_need_it_or_a_recovery_code(settings, db):
    staff = make_login(db, role="staff")
    db.commit()
    app = create_app(settings.with_changes(require_staff_totp=True))
    client = app.test_client()
    sign_in(client, staff)

    forced = client.get("/staff")
    page = client.get("/account/two-factor").get_data(as_text=True)
    secret = page.split('id="totp-secret">')[1].split("<")[0]
    wrong = post_form(client, "/account/two-factor", {"code": "000000"})
    on = post_form(client, "/account/two-factor", {"code": pyotp.TOTP(secret).now()})
    codes = on.get_data(as_text=True).split('id="recovery-codes">')[1].split("</ul>")[0]
    recovery = codes.split('class="secret">')[1].split("<")[0]

    assert forced.headers["Location"].endswith("/account/two-factor")
    assert "not right" in wrong.get_data(as_text=True)
    assert client.get("/staff").status_code == 200
    fresh = app.test_client()
    password_only = post_form(fresh, "/login", {"email": staff.email, "password": PASSWORD})
    assert password_only.headers["Location"].startswith("/login/factor")
    assert fresh.get("/staff").status_code == 302  # not signed in with a password alone
    assert post_form(fresh, "/login/factor", {"code": "123456"}).status_code == 401
    assert post_form(fresh, "/login/factor", {"code": recovery}).status_code == 302
    assert fresh.get("/staff").status_code == 200
    again = app.test_client()
    post_form(again, "/login", {"email": staff.email, "password": PASSWORD})
    assert post_form(again, "/login/factor", {"code": recovery}).status_code == 401  # used
    # The set-up code was this step's; the next step's is inside the accepted window.
    following = pyotp.TOTP(secret).at(time.time() + 30)
    assert post_form(again, "/login/factor", {"code": following}).status_code == 302


def test_an_authenticator_code_signs_in_once_and_an_older_one_never_after_it(settings, db):
    staff = make_login(db, role="staff")
    totp = pyotp.TOTP(pyotp.random_base32())
    staff.totp_secret = totp.secret
    db.commit()
    app = create_app(settings.with_changes(require_staff_totp=True))

    def second_factor(code: str) -> int:
        client = app.test_client()
        post_form(client, "/login", {"email": staff.email, "password": PASSWORD})
        return post_form(client, "/login/factor", {"code": code}).status_code

    now, before = totp.at(time.time()), totp.at(time.time() - 30)
    assert second_factor(now) == 302
    # Someone who saw the code (over a shoulder, in a phishing proxy) cannot use it again.
    assert second_factor(now) == 401
    assert second_factor(before) == 401


def test_sign_ins_are_throttled_per_account_across_addresses_and_per_address(collector, db):
    target, sprayed = make_login(db), [make_login(db) for _ in range(10)]
    db.commit()

    def attempt(email, password, address):
        token = csrf_token(collector, "/login")
        data = {"email": email, "password": password, "csrf_token": token}
        return collector.post("/login", data=data, environ_base={"REMOTE_ADDR": address})

    guesses = [attempt(target.email, f"guess {n}", f"10.1.0.{n}") for n in range(10)]
    owner = attempt(target.email, PASSWORD, "10.1.1.1")
    spray = [attempt(sprayed[n % 10].email, f"guess {n}", "10.2.0.1") for n in range(30)]
    other = attempt(sprayed[0].email, PASSWORD, "10.2.0.1")

    assert {answer.status_code for answer in guesses} == {401}
    assert owner.status_code == 429  # until 15 minutes after the guesses, not for ever
    assert "Wait 15 minutes" in owner.get_data(as_text=True)
    assert {answer.status_code for answer in spray} == {401}  # 3 per account, 30 in all
    assert other.status_code == 429


def test_api_tokens_expire_and_record_their_last_use_at_most_once_a_minute(collector, db):
    writing(db)
    member = make_member(db)
    user = create_user(
        db, email="t@example.org", password=PASSWORD, role="member", member_id=member.id
    )
    expired = create_token(db, user=user, name="old", expires_at=utcnow() - timedelta(days=1))
    fresh = create_token(db, user=user, name="new", expires_at=utcnow() + timedelta(days=1))
    db.commit()

    def get(token):
        return collector.get("/api/v1/surveys/2025", headers={"Authorization": f"Bearer {token}"})

    assert get(expired).status_code == 401
    assert get(fresh).status_code in (200, 404)
    db.rollback()
    first = db.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "new"))
    get(fresh)
    db.rollback()
    second = db.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "new"))

    assert first is not None and second == first
    assert db.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "old")) is None
