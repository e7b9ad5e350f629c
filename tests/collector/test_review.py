"""Staff review a response with context: what changed since the last accepted revision, the
member's previous year, and filters on the list."""

from sqlalchemy import select

from collector.review import outlier
from outcomes.models import SurveyResponse
from tests.collector.test_staff_pages import signed_in_staff
from tests.factories import make_account, make_member, make_survey

ANSWERS = {"employees": 120, "women_share": 31.5, "human_rights_policy": True}


def test_a_response_shows_its_last_accepted_answers_and_the_previous_year(collector, db):
    make_survey(db, year=2024)
    make_survey(db, year=2025)
    member = make_member(db, membership_class="Industrial Users", country="NO")
    member_token = make_account(db, member=member)
    staff_token = make_account(db, role="staff")
    db.commit()
    as_member = {"Authorization": f"Bearer {member_token}"}
    as_staff = {"Authorization": f"Bearer {staff_token}"}
    for year, employees in ((2024, 100), (2025, 120)):
        body = {"answers": {**ANSWERS, "employees": employees}}
        collector.put(f"/api/v1/surveys/{year}", json=body, headers=as_member)
        db.rollback()  # a new read sees the response just written
        response_id = db.scalar(select(SurveyResponse.id).where(SurveyResponse.year == year))
        collector.post(
            f"/api/v1/survey-responses/{response_id}/decision",
            json={"decision": "accept"},
            headers=as_staff,
        )
    amended = {"answers": {**ANSWERS, "employees": 500}}
    collector.put("/api/v1/surveys/2025", json=amended, headers=as_member)
    signed_in_staff(collector, db)

    page = collector.get(f"/staff/responses/{response_id}").get_data(as_text=True)
    row = page[page.index("<td>employees</td>") :].split("</tr>")[0]
    unchanged = page[page.index("<td>women_share</td>") :].split("</tr>")[0]

    assert "<td>500 <span" in row and "changed" in row
    assert "<td>120</td><td>100</td>" in row  # last accepted, then 2024's
    assert "changed" not in unchanged
    assert ">check</span>" in row  # 500 is five times 2024's 100
    assert "check</span>" not in unchanged


def test_an_answer_is_flagged_only_when_it_moves_more_than_threefold():
    assert outlier(301, 100) and outlier(33, 100) and outlier(5, 0) and outlier(-5, 5)
    assert not outlier(300, 100) and not outlier(34, 100) and not outlier(0, 0)
    assert not outlier(True, False) and not outlier("yes", "no") and not outlier(7, None)


def test_staff_filter_responses_by_status_year_class_and_country(collector, db):
    make_survey(db)
    member = make_member(db, name="Norsk Alu", membership_class="Industrial Users", country="NO")
    token = make_account(db, member=member)
    db.commit()
    body = {"answers": ANSWERS}
    collector.put("/api/v1/surveys/2025", json=body, headers={"Authorization": f"Bearer {token}"})
    signed_in_staff(collector, db)

    def listed(query: str) -> str:
        return collector.get(f"/staff/responses?{query}").get_data(as_text=True)

    assert "Norsk Alu" in listed("status=submitted&year=2025&country=no")
    assert "Norsk Alu" in listed("membership_class=Industrial+Users")
    assert "Norsk Alu" not in listed("status=accepted")
    assert "Norsk Alu" not in listed("country=FR")
    assert "Norsk Alu" not in listed("membership_class=Civil+Society")
    wrong = collector.get("/staff/responses?year=next&country=XX")
    assert wrong.status_code == 400
    assert "Norsk Alu" not in wrong.get_data(as_text=True)
