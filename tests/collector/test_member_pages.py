"""The member's pages: the survey form, history, receipt, tokens, and nobody else's data."""

from sqlalchemy import func, select

from outcomes.models import ApiToken, AuditLog, Outbox, SurveyResponse, SurveyRevision
from tests.collector.web import make_login, post_form, sign_in
from tests.factories import make_survey

ANSWERS = {"employees": "120", "women_share": "31.5", "human_rights_policy": "yes"}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def signed_in_member(collector, db):
    make_survey(db)
    user = make_login(db)
    db.commit()
    sign_in(collector, user)
    return user


def test_the_survey_form_is_rendered_from_the_definition(collector, db):
    signed_in_member(collector, db)

    page = collector.get("/member/surveys/2025").get_data(as_text=True)

    for key in ("employees", "women_share", "human_rights_policy"):
        assert f'name="{key}"' in page
    assert "Between 0 and 100" in page


def test_a_draft_may_be_incomplete_and_comes_back_filled_in(collector, db):
    signed_in_member(collector, db)

    answer = post_form(collector, "/member/surveys/2025", {"action": "draft", "employees": "40"})

    assert answer.status_code == 302
    page = collector.get("/member/surveys/2025").get_data(as_text=True)
    assert 'value="40"' in page
    assert db.scalar(select(SurveyResponse.status)) == "draft"
    assert count(db, Outbox) == 0


def test_a_submission_with_bad_answers_shows_each_error_by_its_field_and_saves_nothing(
    collector, db
):
    signed_in_member(collector, db)

    answer = post_form(
        collector,
        "/member/surveys/2025",
        {"action": "submit", "employees": "many", "women_share": "140"},
    )

    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "Enter a whole number, for example 12." in page
    assert "Must be between 0 and 100 %." in page
    assert 'value="many"' in page
    assert count(db, SurveyRevision) == 0


def test_submitting_then_amending_keeps_both_revisions_and_shows_the_change(collector, db):
    signed_in_member(collector, db)
    post_form(collector, "/member/surveys/2025", {"action": "submit", **ANSWERS})

    post_form(
        collector, "/member/surveys/2025", {"action": "submit", **ANSWERS, "employees": "150"}
    )

    history = collector.get("/member/surveys/2025/history").get_data(as_text=True)
    assert "Revision 2" in history and "Revision 1" in history
    assert "<td>employees</td><td>120</td><td>150</td>" in history
    assert count(db, SurveyRevision) == 2
    assert count(db, Outbox) == 2


def test_the_receipt_lists_the_indicators_fed_and_says_they_are_suppressed_below_threshold(
    collector, db
):
    signed_in_member(collector, db)

    answer = post_form(collector, "/member/surveys/2025", {"action": "submit", **ANSWERS})

    assert answer.headers["Location"].endswith("/member/surveys/2025/receipt")
    receipt = collector.get("/member/surveys/2025/receipt").get_data(as_text=True)
    assert "survey_employees" in receipt
    assert "survey_response_rate" in receipt
    assert "Suppressed" in receipt
    assert "cell key method" in receipt  # the promise names the noise that keeps it true


def test_a_member_reading_another_members_revision_gets_404_and_the_attempt_is_logged(
    collector, db
):
    make_survey(db)
    alice, bob = make_login(db), make_login(db)
    db.commit()
    sign_in(collector, alice)
    post_form(collector, "/member/surveys/2025", {"action": "submit", **ANSWERS})
    own = db.scalar(select(SurveyRevision.id))
    assert collector.get(f"/member/revisions/{own}").status_code == 200

    post_form(collector, "/logout", {}, token_from="/member")
    sign_in(collector, bob)
    answer = collector.get(f"/member/revisions/{own}")

    assert answer.status_code == 404
    db.rollback()
    denied = db.scalars(select(AuditLog).where(AuditLog.action == "access.denied")).one()
    assert denied.actor_id == bob.id
    assert denied.object_id == str(own)


def test_a_member_creates_a_token_that_works_then_revokes_it(collector, db):
    signed_in_member(collector, db)

    page = post_form(collector, "/member/tokens", {"name": "script"}).get_data(as_text=True)
    token = page.split('id="new-token">')[1].split("<")[0]
    api = {"Authorization": f"Bearer {token}"}
    assert collector.get("/api/v1/surveys/2025", headers=api).status_code == 404  # no response yet

    token_id = db.scalar(select(ApiToken.id))
    post_form(collector, f"/member/tokens/{token_id}/revoke", {}, token_from="/member/tokens")

    assert collector.get("/api/v1/surveys/2025", headers=api).status_code == 401


def test_a_member_cannot_revoke_another_members_token(collector, db):
    make_survey(db)
    alice, bob = make_login(db), make_login(db)
    db.commit()
    sign_in(collector, alice)
    post_form(collector, "/member/tokens", {"name": "alice's"})
    post_form(collector, "/logout", {}, token_from="/member")
    sign_in(collector, bob)
    token_id = db.scalar(select(ApiToken.id))

    answer = post_form(
        collector, f"/member/tokens/{token_id}/revoke", {}, token_from="/member/tokens"
    )

    assert answer.status_code == 404
    db.rollback()
    assert db.scalar(select(ApiToken.revoked_at)) is None
    assert (
        db.scalar(select(AuditLog.object_type).where(AuditLog.action == "access.denied"))
        == "api_token"
    )


def test_the_member_pages_say_which_revision_is_the_accepted_one(collector, db):
    signed_in_member(collector, db)
    post_form(collector, "/member/surveys/2025", {"action": "submit", **ANSWERS})
    db.execute(SurveyResponse.__table__.update().values(status="accepted", accepted_revision=1))
    db.commit()
    post_form(collector, "/member/surveys/2025", {"action": "draft", "employees": "7"})

    listing = collector.get("/member").get_data(as_text=True)
    history = collector.get("/member/surveys/2025/history").get_data(as_text=True)

    assert "revision 1 is the accepted one" in listing
    assert history.count("accepted: counted in the public figures") == 1
    assert history.index('id="revision-1"') < history.index("accepted: counted")
