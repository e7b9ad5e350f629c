"""The staff pages: survey decisions, re-aggregation progress, snapshots, the audit log."""

from datetime import date, timedelta

from sqlalchemy import func, select

from outcomes.models import AuditLog, Outbox, Snapshot, SurveyResponse, utcnow
from outcomes.queue import request_aggregation
from tests.collector.web import make_login, post_form, sign_in, writing
from tests.factories import make_survey

ANSWERS = {"employees": "120", "women_share": "31.5", "human_rights_policy": "yes"}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def submitted_response(collector, db) -> int:
    """Have a member submit its 2025 survey through the web form, then sign out."""
    make_survey(db)
    member = make_login(db)
    db.commit()
    sign_in(collector, member)
    post_form(collector, "/member/surveys/2025", {"action": "submit", **ANSWERS})
    post_form(collector, "/logout", {}, token_from="/member")
    return db.scalar(select(SurveyResponse.id))


def signed_in_staff(collector, db, *, admin=False):
    staff = make_login(db, role="staff", admin=admin)
    db.commit()
    sign_in(collector, staff)
    return staff


def test_accepting_a_response_writes_an_outbox_row_in_the_same_transaction(collector, db):
    response_id = submitted_response(collector, db)
    signed_in_staff(collector, db)
    before = count(db, Outbox)

    answer = post_form(collector, f"/staff/responses/{response_id}", {"decision": "accept"})

    assert answer.status_code == 302
    db.rollback()
    assert db.scalar(select(SurveyResponse.status)) == "accepted"
    assert count(db, Outbox) == before + 1
    assert "survey.accepted" in db.scalars(select(AuditLog.action)).all()


def test_a_rejection_needs_a_reason_and_a_decided_response_cannot_be_decided_again(collector, db):
    response_id = submitted_response(collector, db)
    signed_in_staff(collector, db)
    path = f"/staff/responses/{response_id}"

    assert post_form(collector, path, {"decision": "reject"}).status_code == 422
    assert (
        post_form(
            collector, path, {"decision": "reject", "reason": "Numbers implausible"}
        ).status_code
        == 302
    )
    assert post_form(collector, path, {"decision": "accept"}).status_code == 409
    db.rollback()
    assert db.scalar(select(SurveyResponse.status)) == "rejected"
    # The response rate counted the submission: the rejection asks for it to be recounted.
    newest = db.execute(select(Outbox.reason, Outbox.topic).order_by(Outbox.id.desc())).first()
    assert tuple(newest) == ("survey 2025 rejected", "responses")


def test_re_aggregating_queues_a_job_and_shows_its_progress_page(collector, db):
    signed_in_staff(collector, db)

    started = post_form(collector, "/staff/aggregations", {}, token_from="/staff")

    assert started.status_code == 302
    job = db.scalar(select(Outbox.job_id).where(Outbox.reason == "staff request"))
    assert started.headers["Location"] == f"/staff/aggregations/{job}"
    assert 'id="job-state"' in collector.get(started.headers["Location"]).get_data(as_text=True)


def test_the_progress_page_refreshes_itself_until_the_job_is_built(collector, db):
    signed_in_staff(collector, db)
    writing(db)
    row = request_aggregation(db, reason="test", requested_by=None)  # written, never sent
    # Dated ahead, so that the running worker's outbox sweep (rows older than a second) leaves
    # it waiting however slowly this test reaches its first page.
    row.created_at = utcnow() + timedelta(hours=1)
    db.commit()
    path = f"/staff/aggregations/{row.job_id}"

    waiting = collector.get(path).get_data(as_text=True)
    writing(db)
    snapshot = Snapshot(
        trigger="test", as_of=date(2026, 1, 1), catalogue_version="t", status="built"
    )
    db.add(snapshot)
    db.flush()
    db.get(Outbox, row.id).snapshot_id = snapshot.id
    db.commit()
    done = collector.get(path).get_data(as_text=True)

    assert '<meta http-equiv="refresh"' in waiting
    assert "refresh" not in done
    assert f"snapshot {snapshot.id}" in done


def test_staff_withdraw_a_release_only_with_a_reason(collector, db):
    signed_in_staff(collector, db)
    snapshot = Snapshot(
        trigger="t",
        as_of=date(2026, 1, 1),
        catalogue_version="t",
        status="released",
        title="2025 results",
        release_number=1,
    )
    db.add(snapshot)
    db.commit()
    path = f"/staff/snapshots/{snapshot.id}/withdraw"

    post_form(collector, path, {"reason": ""}, token_from="/staff/snapshots")
    db.rollback()
    assert db.scalar(select(Snapshot.status)) == "released"

    post_form(collector, path, {"reason": "Wrong certificate dates"}, token_from="/staff/snapshots")
    db.rollback()
    status, reason = db.execute(select(Snapshot.status, Snapshot.withdrawn_reason)).one()
    assert status == "withdrawn"
    assert reason == "Wrong certificate dates"


def test_the_audit_log_filters_by_action_and_person(collector, db):
    submitted_response(collector, db)
    staff = signed_in_staff(collector, db)

    everything = collector.get("/staff/audit").get_data(as_text=True)
    submissions = collector.get("/staff/audit?action=survey.").get_data(as_text=True)
    by_staff = collector.get(f"/staff/audit?actor={staff.email}").get_data(as_text=True)
    bad_date = collector.get("/staff/audit?since=yesterday&until=2099-01-01")
    backwards = collector.get("/staff/audit?since=2026-02-01&until=2026-01-01")

    assert "survey.submitted" in everything and "session.login" in everything
    assert "survey.submitted" in submissions and "session.login" not in submissions
    assert "survey.submitted" not in by_staff and staff.email in by_staff
    assert bad_date.status_code == 400
    assert "Give a date such as 2026-01-31." in bad_date.get_data(as_text=True)
    assert backwards.status_code == 400
    assert "&#39;To&#39; must not be before &#39;From&#39;." in backwards.get_data(as_text=True)


def test_staff_pages_list_applications_responses_and_snapshots(collector, db):
    submitted_response(collector, db)
    signed_in_staff(collector, db)
    for path in ("/staff", "/staff/applications", "/staff/responses", "/staff/snapshots"):
        assert collector.get(path).status_code == 200, path


def test_staff_set_a_new_password_with_which_the_member_signs_in(collector, db):
    member = make_login(db)
    signed_in_staff(collector, db, admin=True)

    page = post_form(
        collector, f"/staff/accounts/{member.id}/password", {}, token_from="/staff/accounts"
    )

    password = page.get_data(as_text=True).split('id="new-password">')[1].split("<")[0]
    post_form(collector, "/logout", {}, token_from="/staff")
    sign_in(collector, member, password)
    assert collector.get("/member").headers["Location"].endswith("/account/password")


def test_staff_see_each_snapshots_data_quality_report(collector, db):
    signed_in_staff(collector, db)
    checks = {
        "future_trainings": {"count": 2, "description": "trainings dated after the snapshot"},
        "removed_facilities": {"count": 0, "description": "certificates on removed facilities"},
    }
    db.add(
        Snapshot(
            trigger="t",
            as_of=date(2026, 1, 1),
            catalogue_version="t",
            status="built",
            data_quality={"checks": checks},
        )
    )
    db.commit()

    page = collector.get("/staff/snapshots").get_data(as_text=True)

    assert "2: trainings dated after the snapshot" in page
    assert "removed facilities" not in page  # only checks that flagged rows are listed
