"""Staff add, change and remove the questions of a draft survey; an opened one is refused."""

from sqlalchemy import func, select

from outcomes.models import AuditLog, SurveyQuestion
from tests.collector.test_staff_pages import signed_in_staff
from tests.collector.web import post_form, writing
from tests.factories import make_account, make_survey

WATER = {
    "key": "water_use",
    "label": "Water used",
    "help_text": "Fresh water withdrawn in the year",
    "type": "decimal",
    "unit": "m3",
    "minimum": "0",
    "maximum": "1000000",
    "required": "yes",
    "aggregation": "sum",
}


def questions(db, definition_id: int) -> dict[str, SurveyQuestion]:
    db.rollback()
    db.expire_all()
    found = db.scalars(select(SurveyQuestion).where(SurveyQuestion.definition_id == definition_id))
    return {q.key: q for q in found}


def test_staff_add_change_and_remove_questions_of_a_draft(collector, db):
    draft = make_survey(db, year=2026, status="draft")
    signed_in_staff(collector, db)
    base = f"/staff/surveys/{draft.id}"

    added = post_form(collector, f"{base}/questions/new", WATER)
    water = questions(db, draft.id)["water_use"]
    assert (water.type, water.unit, water.minimum, water.maximum, water.required) == (
        "decimal",
        "m3",
        0.0,
        1_000_000.0,
        True,
    )
    shown = collector.get(f"{base}/questions/{water.id}").get_data(as_text=True)
    changed = post_form(
        collector,
        f"{base}/questions/{water.id}",
        {
            **WATER,
            "type": "select_many",
            "minimum": "",
            "maximum": "",
            "aggregation": "count",
            "choices": "river = A river\nwell = A well\n\ngrid",
        },
    )
    employees = questions(db, draft.id)["employees"]
    removed = post_form(collector, f"{base}/questions/{employees.id}/delete", {}, token_from=base)

    assert added.status_code == 302
    assert 'value="1000000"' in shown
    assert changed.status_code == 302
    assert removed.status_code == 302
    after = questions(db, draft.id)
    assert sorted(after) == ["human_rights_policy", "water_use", "women_share"]
    assert after["water_use"].choices == [
        {"name": "river", "label": "A river"},
        {"name": "well", "label": "A well"},
        {"name": "grid", "label": "grid"},
    ]
    actions = db.scalars(
        select(AuditLog.action).where(AuditLog.action.startswith("survey_question"))
    ).all()
    assert sorted(actions) == [
        "survey_question.create",
        "survey_question.delete",
        "survey_question.update",
    ]
    update = db.scalars(select(AuditLog).where(AuditLog.action == "survey_question.update")).one()
    assert (update.details["before"]["type"], update.details["after"]["type"]) == (
        "decimal",
        "select_many",
    )


def test_a_question_that_does_not_fit_together_is_refused_field_by_field(collector, db):
    draft = make_survey(db, year=2026, status="draft")
    signed_in_staff(collector, db)
    path = f"/staff/surveys/{draft.id}/questions/new"

    cases = {
        "maximum": {**WATER, "minimum": "10", "maximum": "5"},
        "key": {**WATER, "key": "Water Use!"},
        "choices": {
            **WATER,
            "type": "select_one",
            "minimum": "",
            "maximum": "",
            "aggregation": "count",
        },
        "aggregation": {**WATER, "type": "text", "minimum": "", "maximum": ""},
        "type": {**WATER, "type": "photo"},
    }
    for field, form in cases.items():
        answer = post_form(collector, path, form)
        assert answer.status_code == 422, field
        assert 'class="field-error"' in answer.get_data(as_text=True)
    duplicate = post_form(collector, path, {**WATER, "key": "employees"})
    not_a_number = post_form(collector, path, {**WATER, "minimum": "lots"})

    assert "already asks a question keyed employees" in duplicate.get_data(as_text=True)
    assert "Not a valid number." in not_a_number.get_data(as_text=True)
    assert 'value="lots"' in not_a_number.get_data(as_text=True)
    assert sorted(questions(db, draft.id)) == ["employees", "human_rights_policy", "women_share"]


def test_the_questions_of_an_opened_survey_cannot_change(collector, db):
    opened = make_survey(db, year=2025, status="open")
    signed_in_staff(collector, db)
    base = f"/staff/surveys/{opened.id}"
    employees = questions(db, opened.id)["employees"]

    form = collector.get(f"{base}/questions/{employees.id}").get_data(as_text=True)
    changed = post_form(
        collector, f"{base}/questions/{employees.id}", {**WATER, "key": "employees"}
    )
    added = post_form(collector, f"{base}/questions/new", WATER)
    removed = post_form(collector, f"{base}/questions/{employees.id}/delete", {}, token_from=base)

    assert "its questions can change only while it is a draft" in form
    assert (changed.status_code, added.status_code, removed.status_code) == (409, 409, 409)
    assert "is open: its questions can change only while it is a draft" in removed.get_data(
        as_text=True
    )
    after = questions(db, opened.id)
    assert sorted(after) == ["employees", "human_rights_policy", "women_share"]
    assert after["employees"].type == "integer"
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action.startswith("survey_question"))
        )
        == 0
    )
    writing(db)
    other = make_survey(db, year=2027, status="draft")
    db.commit()
    wrong_survey = collector.get(f"/staff/surveys/{other.id}/questions/{employees.id}")
    assert wrong_survey.status_code == 404


def test_a_question_answered_per_facility_is_shown_so_and_aggregates_only_as_sum_or_none(
    collector, db
):
    draft = make_survey(db, year=2026, status="draft")
    employees = db.scalars(
        select(SurveyQuestion).where(
            SurveyQuestion.definition_id == draft.id, SurveyQuestion.key == "employees"
        )
    ).one()
    employees.logic = {"repeat": "<sites>", "section": "Each site"}  # as an import makes it
    token = make_account(db, role="staff")
    db.commit()
    signed_in_staff(collector, db)
    base = f"/staff/surveys/{draft.id}"
    employee = {**WATER, "key": "employees", "type": "integer", "unit": "people"}

    listed = collector.get(base).get_data(as_text=True)
    mean = post_form(
        collector, f"{base}/questions/{employees.id}", {**employee, "aggregation": "mean"}
    )
    by_api = collector.put(
        f"/api/v1/survey-definitions/{draft.id}/questions/{employees.id}",
        json={"key": "employees", "label": "Employees", "type": "integer", "aggregation": "median"},
        headers={"Authorization": f"Bearer {token}"},
    )
    summed = post_form(collector, f"{base}/questions/{employees.id}", employee)

    assert "per facility (repeat &lt;sites&gt;)" in listed
    assert "<sites>" not in listed
    assert mean.status_code == 422
    assert (
        "A question answered per facility (repeat &lt;sites&gt;) is published as each "
        "member&#39;s total over its facilities: choose sum or none."
    ) in mean.get_data(as_text=True)
    assert by_api.status_code == 422, by_api.get_json()
    assert "choose sum or none" in by_api.get_json()["errors"]["json"]["aggregation"][0]
    assert summed.status_code == 302
    after = questions(db, draft.id)["employees"]
    assert (after.aggregation, after.unit) == ("sum", "people")
    assert after.logic == {"repeat": "<sites>", "section": "Each site"}
