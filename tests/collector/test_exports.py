"""Staff download the accepted survey answers as CSV (the authorisation matrix covers the rest)."""

import csv
import io

from sqlalchemy import update

from outcomes.models import SurveyResponse
from tests.collector.test_wide_exports import add_site, make_repeat_survey
from tests.factories import make_account, make_member, make_survey

NAME = '=HYPERLINK("http://evil.example")'


def put(collector, token: str, employees: int, status: str = "submitted") -> None:
    answers = {"employees": employees, "women_share": 31.5, "human_rights_policy": True}
    body = {"status": status, "answers": answers}
    headers = {"Authorization": f"Bearer {token}"}
    assert collector.put("/api/v1/surveys/2025", json=body, headers=headers).status_code == 200


def test_the_csv_holds_the_accepted_revision_of_accepted_responses_only(collector, db):
    make_survey(db)
    accepted = make_member(db, name=NAME)
    member_token, other_token = make_account(db, member=accepted), make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(collector, member_token, 120)
    put(collector, member_token, 130)  # the accepted revision: only its answers are exported
    put(collector, other_token, 7)  # submitted, never accepted: not exported
    db.execute(
        update(SurveyResponse)
        .where(SurveyResponse.member_id == accepted.id)
        .values(status="accepted", accepted_revision=2)
    )
    db.commit()
    put(collector, member_token, 140, status="draft")  # after the acceptance: not exported

    answer = collector.get("/api/v1/exports/answers.csv", headers=staff)

    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert {row["question_key"]: float(row["value_number"]) for row in rows} == {
        "employees": 130,
        "women_share": 31.5,
        "human_rights_policy": 1,
    }
    assert {(row["year"], row["revision"]) for row in rows} == {("2025", "2")}
    # A member's name that a spreadsheet would run as a formula is exported as text.
    assert {row["member"] for row in rows} == {"'" + NAME}


def test_every_revision_on_request_and_a_wrong_choice_is_a_422(collector, db):
    make_survey(db)
    token = make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(collector, token, 120)
    put(collector, token, 130)

    answer = collector.get("/api/v1/exports/answers.csv?revisions=all", headers=staff)

    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    employees = [
        (r["revision"], r["status"], float(r["value_number"]))
        for r in rows
        if r["question_key"] == "employees"
    ]
    assert employees == [("1", "submitted", 120), ("2", "submitted", 130)]
    wrong = collector.get("/api/v1/exports/answers.csv?revisions=some", headers=staff)
    assert wrong.status_code == 422
    assert wrong.json["errors"]["query"]["revisions"] == ["Must be one of: accepted, all."]


def test_a_repeats_answers_name_their_facility(collector, db):
    make_repeat_survey(db)
    member = make_member(db)
    plant, formula = add_site(db, member, "Plant A"), add_site(db, member, NAME)
    token = make_account(db, member=member)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    answers = {
        "employees": 5,
        "women_share": 10,
        f"site_open@{plant}": "yes",
        f"site_energy@{plant}": 12.5,
        f"site_open@{formula}": "no",
    }
    body = {"status": "submitted", "answers": answers}
    headers = {"Authorization": f"Bearer {token}"}
    assert collector.put("/api/v1/surveys/2025", json=body, headers=headers).status_code == 200

    answer = collector.get("/api/v1/exports/answers.csv?revisions=all", headers=staff)

    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert list(rows[0])[7:12] == [
        "question_key",
        "facility_id",
        "facility",
        "value_number",
        "value_text",
    ]
    got = {
        (row["question_key"], row["facility_id"], row["facility"]): (
            float(row["value_number"]) if row["value_number"] else row["value_text"]
        )
        for row in rows
    }
    assert got == {
        ("employees", "", ""): 5,
        ("women_share", "", ""): 10,
        ("site_open", str(plant), "Plant A"): "yes",
        ("site_energy", str(plant), "Plant A"): 12.5,
        ("site_open", str(formula), "'" + NAME): "no",  # a formula is exported as text
    }
