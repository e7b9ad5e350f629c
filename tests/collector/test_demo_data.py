"""The demo data set as a new installation sees it: staff work on it from the first click."""

from sqlalchemy import func, select

from collector.expressions import form_errors
from collector.kinds import KINDS
from outcomes.demo import SURVEY_YEARS, load_demo
from outcomes.models import (
    Application,
    Member,
    SurveyAnswer,
    SurveyDefinition,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.repeats import answer_key, detached, expand, member_facilities
from tests.factories import make_account


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_with_staff(db) -> str:
    """Load the demo data set and return a staff token."""
    load_demo(db)
    token = make_account(db, role="staff")
    db.commit()
    return token


def test_the_first_approval_after_loading_the_demo_adds_a_member(collector, db):
    token = demo_with_staff(db)
    waiting = db.scalars(
        select(Application).where(Application.status == "received").order_by(Application.id)
    ).first()
    newest = db.scalar(select(Member.id).order_by(Member.id.desc()).limit(1))

    answer = collector.post(
        f"/api/v1/applications/{waiting.reference}/decision",
        json={"decision": "approve"},
        headers=auth(token),
    )

    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["member_id"] > newest


def test_every_templates_example_row_imports_as_it_is_on_the_demo_data(collector, db):
    token = demo_with_staff(db)

    for kind in KINDS:  # members before the facilities and certificates that name them
        template = collector.get(f"/api/v1/imports/{kind}/template.csv", headers=auth(token))
        answer = collector.post(
            f"/api/v1/imports/{kind}",
            data=template.data,
            content_type="text/csv",
            headers=auth(token),
        )
        assert answer.status_code == 201, (kind, answer.json)


def test_the_open_years_demo_form_asks_each_facility_and_its_answers_agree(db):
    load_demo(db)
    db.commit()
    year = SURVEY_YEARS[-1]
    questions = detached(
        db.scalars(
            select(SurveyQuestion)
            .join(SurveyDefinition)
            .where(SurveyDefinition.year == year)
            .order_by(SurveyQuestion.position)
        )
    )
    repeated = {q.key: q.aggregation for q in questions if q.logic.get("repeat")}
    assert repeated == {"site_operating": "none", "site_energy_mwh": "sum"}
    assert all(set(q.logic["labels"]) == {"English (en)", "Français (fr)"} for q in questions)
    responses = db.execute(
        select(SurveyResponse.member_id, SurveyRevision.id, SurveyRevision.answers)
        .join(SurveyRevision)
        .where(SurveyResponse.year == year)
    ).all()
    typed = {
        (revision, answer_key(key, site)): value
        for revision, key, site, value in db.execute(
            select(
                SurveyAnswer.revision_id,
                SurveyAnswer.question_key,
                SurveyAnswer.facility_id,
                SurveyAnswer.value_number,
            ).where(SurveyAnswer.facility_id.is_not(None))
        )
    }
    asked_sites = 0
    for member_id, revision, answers in responses:
        # Each member's form, its repeat once per facility, accepts the answers it holds.
        asked = expand(questions, member_facilities(db, member_id=member_id, year=year))
        rules = tuple((q.key, q.required, q.logic, tuple(q.choices)) for q in asked if q.logic)
        assert form_errors(rules, answers, submitted=True) == {}, answers
        per_site = {q.key for q in asked if q.facility_id is not None and q.key in answers}
        asked_sites += len(per_site)
        # The typed table holds the same per-facility answers, each with its facility.
        assert {k: float(answers[k]) for k in per_site} == {
            k: v for (r, k), v in typed.items() if r == revision
        }
    assert asked_sites > 100
    skipped = sum(
        1 for (_r, key), v in typed.items() if key.startswith("site_operating@") and not v
    )
    assert skipped  # some sites did not operate, so the skip logic left their energy out
    assert db.scalar(select(func.count()).where(SurveyAnswer.facility_id.is_not(None))) == len(
        typed
    )
