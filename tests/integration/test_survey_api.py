"""The member's survey through the JSON API, on SQLite and on PostgreSQL."""

import dataclasses
import json
import uuid

import redis
from sqlalchemy import func, select

from collector.changes import sender
from outcomes.models import AuditLog, IdempotencyRecord, Outbox, SurveyAnswer, SurveyRevision
from tests.conftest import wait_for
from tests.factories import make_account, make_survey

GOOD = {"answers": {"employees": 120, "women_share": 31.5, "human_rights_policy": True}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_a_submitted_survey_is_saved_as_a_revision_with_an_outbox_row(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()

    answer = collector.put("/api/v1/surveys/2025", json=GOOD, headers=auth(token))

    assert answer.status_code == 200, answer.json
    assert answer.json["revision"] == 1
    assert answer.json["status"] == "submitted"
    assert answer.json["answers"]["employees"] == 120
    assert count(db, SurveyRevision) == 1
    assert count(db, SurveyAnswer) == 3
    assert count(db, Outbox) == 1
    assert db.scalar(select(AuditLog.action)) == "survey.submitted"


def test_an_amendment_keeps_every_revision_and_get_returns_the_latest(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    draft = {"status": "draft", "answers": {"employees": 10}}
    assert collector.put("/api/v1/surveys/2025", json=draft, headers=auth(token)).status_code == 200
    collector.put("/api/v1/surveys/2025", json=GOOD, headers=auth(token))

    latest = collector.get("/api/v1/surveys/2025", headers=auth(token))

    assert latest.json["revision"] == 2
    assert latest.json["answers"]["employees"] == 120
    assert count(db, SurveyRevision) == 2
    assert count(db, Outbox) == 1  # a draft asks for no re-aggregation


def test_bad_answers_get_a_422_naming_each_field_and_nothing_is_written(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    bad = {"answers": {"employees": "many", "women_share": 140, "profit": 1}}

    answer = collector.put("/api/v1/surveys/2025", json=bad, headers=auth(token))

    assert answer.status_code == 422
    fields = answer.json["errors"]["json"]["answers"]
    assert fields["women_share"] == ["Must be between 0 and 100 %."]
    assert set(fields) == {"employees", "women_share", "profit"}
    assert count(db, SurveyRevision) == count(db, Outbox) == 0


def test_a_malformed_body_gets_a_4xx_json_error(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    for body in ("not json", '{"answers": 3}', '{"answers": {}, "status": "accepted"}'):
        answer = collector.put(
            "/api/v1/surveys/2025",
            data=body,
            headers={**auth(token), "Content-Type": "application/json"},
        )
        assert 400 <= answer.status_code < 500, body
        assert "errors" in answer.json
    assert count(db, SurveyRevision) == 0


def test_an_unknown_year_gets_404(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    answer = collector.put("/api/v1/surveys/1999", json=GOOD, headers=auth(token))
    assert answer.status_code == 404
    assert answer.json["errors"]["request"] == ["No survey is open for reporting year 1999."]


def test_without_a_valid_token_the_answer_is_401_and_nothing_is_written(collector, db):
    make_survey(db)
    db.commit()
    for headers in ({}, auth("oc_forged"), {"Authorization": "Basic abc"}):
        answer = collector.put("/api/v1/surveys/2025", json=GOOD, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert count(db, SurveyRevision) == 0


def test_a_staff_token_may_not_file_a_member_survey(collector, db):
    make_survey(db)
    token = make_account(db, role="staff")
    db.commit()
    assert collector.put("/api/v1/surveys/2025", json=GOOD, headers=auth(token)).status_code == 403


def test_a_member_never_sees_another_members_response(collector, db):
    make_survey(db)
    alice, bob = make_account(db), make_account(db)
    db.commit()
    collector.put("/api/v1/surveys/2025", json=GOOD, headers=auth(alice))

    assert collector.get("/api/v1/surveys/2025", headers=auth(bob)).status_code == 404
    assert collector.get("/api/v1/surveys/2025", headers=auth(alice)).status_code == 200


def test_a_retry_with_the_same_idempotency_key_is_a_no_op_with_the_same_answer(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    headers = {**auth(token), "Idempotency-Key": "submit-2025-1"}

    first = collector.put("/api/v1/surveys/2025", json=GOOD, headers=headers)
    again = collector.put("/api/v1/surveys/2025", json=GOOD, headers=headers)

    assert first.status_code == again.status_code == 200
    assert first.json == again.json
    assert count(db, SurveyRevision) == count(db, Outbox) == count(db, IdempotencyRecord) == 1


def test_reusing_an_idempotency_key_with_another_body_is_a_409(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    headers = {**auth(token), "Idempotency-Key": "submit-2025-1"}
    collector.put("/api/v1/surveys/2025", json=GOOD, headers=headers)
    other = {"answers": {**GOOD["answers"], "employees": 121}}

    answer = collector.put("/api/v1/surveys/2025", json=other, headers=headers)

    assert answer.status_code == 409
    assert "different body" in answer.json["errors"]["request"][0]
    assert count(db, SurveyRevision) == 1


def test_health_and_openapi_are_served(collector):
    assert collector.get("/healthz").json == {"status": "ok"}
    spec = collector.get("/api/openapi.json").json
    assert "/api/v1/surveys/{year}" in spec["paths"]
    put = spec["paths"]["/api/v1/surveys/{year}"]["put"]
    assert {"200", "401", "422"} <= set(put["responses"])


def test_a_burst_of_submissions_sends_one_run_at_once_and_one_for_the_rest(settings):
    # A queue no worker reads, so the broker shows every run that was sent.
    quiet = dataclasses.replace(settings, queue_name=f"burst-{uuid.uuid4().hex[:8]}")
    broker = redis.Redis.from_url(quiet.broker_url)
    burst = sender(quiet)
    try:
        for n in range(10):  # committed outbox rows, as save_survey hands them over
            burst.send(Outbox(id=n, job_id=f"agg-{n}", reason="survey", requested_by=None))
        assert broker.llen(quiet.queue_name) == 1

        def sent() -> set[str]:
            messages = broker.lrange(quiet.queue_name, 0, -1)
            return {json.loads(message)["headers"]["id"] for message in messages}

        # The interval's end sends one run for the newest row; that run drains them all.
        assert wait_for(lambda: sent() == {"agg-0", "agg-9"}, timeout=5)
    finally:
        broker.delete(quiet.queue_name)
