"""The staff API for survey definitions, their draft questions and response decisions."""

from datetime import date

from sqlalchemy import func, select

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from outcomes.models import (
    AuditLog,
    IndicatorValue,
    Outbox,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
)
from tests.factories import make_account, make_survey

ANSWERS = {"answers": {"employees": 120, "women_share": 31.5, "human_rights_policy": True}}
QUESTION = {"key": "water_use", "label": "Water used", "type": "decimal", "aggregation": "sum"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(db, model) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(model))


def test_staff_start_a_year_from_the_last_then_open_and_close_it(collector, db):
    make_survey(db, year=2025, status="closed")
    staff = auth(make_account(db, role="staff"))
    db.commit()

    created = collector.post("/api/v1/survey-definitions", json={"year": 2026}, headers=staff)
    no_previous = collector.post("/api/v1/survey-definitions", json={"year": 2031}, headers=staff)
    not_a_year = collector.post("/api/v1/survey-definitions", json={"year": "soon"}, headers=staff)
    path = f"/api/v1/survey-definitions/{created.json['id']}/status"
    opened = collector.post(path, json={"status": "open"}, headers=staff)
    again = collector.post(path, json={"status": "open"}, headers=staff)
    unknown = collector.post(path, json={"status": "archived"}, headers=staff)
    listed = collector.get("/api/v1/survey-definitions", headers=staff)

    assert created.status_code == 201, created.json
    assert [q["key"] for q in created.json["questions"]] == [
        "employees",
        "women_share",
        "human_rights_policy",
    ]
    assert (created.json["year"], created.json["status"]) == (2026, "draft")
    assert no_previous.status_code == 422
    assert "no 2030 survey" in no_previous.json["errors"]["json"]["year"][0]
    assert not_a_year.status_code == 422
    assert (opened.status_code, opened.json["status"]) == (200, "open")
    assert again.status_code == 409
    assert "cannot be made open" in again.json["errors"]["request"][0]
    assert unknown.status_code == 422
    assert [(d["year"], d["status"]) for d in listed.json] == [(2026, "open"), (2025, "closed")]
    assert count(db, SurveyDefinition) == 2
    assert collector.get("/api/v1/survey-definitions/999999", headers=staff).status_code == 404


def test_staff_edit_a_drafts_questions_through_the_api_and_not_an_open_ones(collector, db):
    draft = make_survey(db, year=2026, status="draft")
    opened = make_survey(db, year=2025, status="open")
    staff = auth(make_account(db, role="staff"))
    db.commit()
    base = f"/api/v1/survey-definitions/{draft.id}/questions"

    added = collector.post(base, json=QUESTION, headers=staff)
    changed = collector.put(
        f"{base}/{added.json['id']}",
        json={**QUESTION, "minimum": 0, "maximum": 5e6, "unit": "m3"},
        headers=staff,
    )
    backwards = collector.put(
        f"{base}/{added.json['id']}", json={**QUESTION, "minimum": 9, "maximum": 1}, headers=staff
    )
    taken = collector.post(base, json={**QUESTION, "key": "employees"}, headers=staff)
    shown = collector.get(f"/api/v1/survey-definitions/{draft.id}", headers=staff)
    removed = collector.delete(f"{base}/{added.json['id']}", headers=staff)
    open_question = db.scalar(
        select(SurveyQuestion.id).where(SurveyQuestion.definition_id == opened.id)
    )
    refused = collector.put(
        f"/api/v1/survey-definitions/{opened.id}/questions/{open_question}",
        json=QUESTION,
        headers=staff,
    )
    elsewhere = collector.delete(f"{base}/{open_question}", headers=staff)

    assert added.status_code == 201, added.json
    assert (changed.status_code, changed.json["maximum"], changed.json["unit"]) == (200, 5e6, "m3")
    assert backwards.status_code == 422
    assert "below the minimum" in backwards.json["errors"]["json"]["maximum"][0]
    assert taken.status_code == 422
    assert taken.json["errors"]["json"]["key"]
    assert "water_use" in [q["key"] for q in shown.json["questions"]]
    assert removed.status_code == 204
    assert refused.status_code == 409
    assert "only while it is a draft" in refused.json["errors"]["request"][0]
    assert elsewhere.status_code == 404
    db.rollback()
    keys = db.scalars(select(SurveyQuestion.key).where(SurveyQuestion.definition_id == opened.id))
    assert sorted(keys) == ["employees", "human_rights_policy", "women_share"]
    assert count(db, SurveyQuestion) == 6


def test_staff_decide_a_response_through_the_api_as_the_web_page_does(collector, db):
    make_survey(db)
    member = auth(make_account(db))
    staff = auth(make_account(db, role="staff"))
    db.commit()
    collector.put("/api/v1/surveys/2025", json=ANSWERS, headers=member)
    response_id = db.scalar(select(SurveyResponse.id))
    path = f"/api/v1/survey-responses/{response_id}/decision"
    outbox_before = count(db, Outbox)

    waiting = collector.get("/api/v1/survey-responses?status=submitted", headers=staff)
    no_reason = collector.post(path, json={"decision": "reject"}, headers=staff)
    nonsense = collector.post(path, json={"decision": "maybe"}, headers=staff)
    bad_filter = collector.get("/api/v1/survey-responses?status=lost", headers=staff)
    accepted = collector.post(path, json={"decision": "accept"}, headers=staff)
    twice = collector.post(path, json={"decision": "reject", "reason": "late"}, headers=staff)

    assert [(r["id"], r["answers"]["employees"]) for r in waiting.json] == [(response_id, 120)]
    assert no_reason.status_code == 422
    assert no_reason.json["errors"]["reason"]
    assert nonsense.status_code == 422
    assert bad_filter.status_code == 422
    assert (accepted.status_code, accepted.json["status"]) == (200, "accepted")
    assert twice.status_code == 409
    assert count(db, Outbox) == outbox_before + 1
    # The run it asks for recomputes only the response's year (aggregator/build.py).
    assert db.execute(select(Outbox.topic, Outbox.year).order_by(Outbox.id.desc())).first() == (
        "survey",
        2025,
    )
    assert db.scalar(select(SurveyResponse.status)) == "accepted"
    assert db.scalars(select(AuditLog.action).where(AuditLog.action == "survey.accepted")).all()
    assert collector.get("/api/v1/survey-responses/999999", headers=staff).status_code == 404
    assert collector.get("/api/v1/survey-responses?status=submitted", headers=staff).json == []


def test_a_select_many_question_publishes_how_many_members_chose_each_option(
    collector, db, settings
):
    survey = make_survey(db, year=2025, status="draft")
    staff = auth(make_account(db, role="staff"))
    members = [auth(make_account(db)) for _ in range(3)]
    db.commit()
    sites = {
        "key": "sites",
        "label": "Where water comes from",
        "type": "select_many",
        "aggregation": "count",
        "choices": [
            {"name": "river", "label": "A river"},
            {"name": "well", "label": "A well"},
            {"name": "grid_water", "label": "The grid"},
        ],
    }
    base = f"/api/v1/survey-definitions/{survey.id}"
    assert collector.post(f"{base}/questions", json=sites, headers=staff).status_code == 201
    assert (
        collector.post(f"{base}/status", json={"status": "open"}, headers=staff).status_code == 200
    )
    chosen = (["river", "well"], ["river"], ["grid_water", "river"])
    for member, options in zip(members, chosen, strict=True):
        answers = {**ANSWERS["answers"], "sites": options}
        answer = collector.put("/api/v1/surveys/2025", json={"answers": answers}, headers=member)
        assert answer.status_code == 200, answer.json
    for response in collector.get("/api/v1/survey-responses", headers=staff).json:
        decision = {"decision": "accept"}
        path = f"/api/v1/survey-responses/{response['id']}/decision"
        assert collector.post(path, json=decision, headers=staff).status_code == 200

    result = build_snapshot(
        get_engine(settings.database_url), trigger="test", as_of=date(2026, 6, 30), force=True,
        threshold=1, perturb=False,  # the exact counts; test_aggregation_disclosure adds noise
    )  # fmt: skip

    db.rollback()
    cells = {
        (v.period, v.breakdown, v.category): v.value
        for v in db.scalars(
            select(IndicatorValue).where(
                IndicatorValue.snapshot_id == result.snapshot_id,
                IndicatorValue.indicator == "survey_sites",
            )
        )
    }
    assert cells[("all", "total", "")] == 3
    assert cells[("all", "answer", "river")] == 3
    assert cells[("all", "answer", "well")] == 1
    assert cells[("all", "answer", "grid_water")] == 1
    assert not any(category and ";" in category for _p, _b, category in cells)


def test_an_empty_choice_is_stored_as_no_answer():
    from collector.surveys import _typed_answers
    from outcomes.repeats import detached

    asked = detached(
        [
            SurveyQuestion(key="sites", label="Sites", type="select_many", choices=[], logic={}),
            SurveyQuestion(key="employees", label="Employees", type="integer", logic={}),
        ]
    )
    rows = _typed_answers(7, tuple(asked), {"sites": [], "employees": 3})

    assert [row["question_key"] for row in rows] == ["employees"]
