"""Staff review a response with context: what changed since the last accepted revision, the
member's previous year, flags against last year and the other members, filters, bulk
acceptance and returning a response for correction."""

from sqlalchemy import select

from outcomes.models import AuditLog, SurveyResponse
from tests.collector.test_member_pages import ANSWERS as FORM_ANSWERS
from tests.collector.test_member_pages import signed_in_member
from tests.collector.test_staff_pages import signed_in_staff
from tests.collector.web import post_form
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


def submit(collector, token: str, employees: float, year: int = 2025) -> dict:
    """Submit a member's response with this many employees; return the API's answer."""
    body = {"answers": {**ANSWERS, "employees": employees}}
    answer = collector.put(
        f"/api/v1/surveys/{year}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def staff_api(db) -> dict:
    token = make_account(db, role="staff")
    db.commit()
    return {"Authorization": f"Bearer {token}"}


def newest_response(db) -> int:
    """Return the newest 2025 response's id, leaving no read open (SQLite's writers wait)."""
    db.rollback()
    found = db.scalar(
        select(SurveyResponse.id)
        .where(SurveyResponse.year == 2025)
        .order_by(SurveyResponse.id.desc())
        .limit(1)
    )
    db.rollback()
    return found


def accepted_peers(collector, db, as_staff: dict, values: list[float]) -> None:
    """Give members with accepted 2025 responses of these employee counts."""
    for employees in values:
        token = make_account(db)
        db.commit()
        submit(collector, token, employees)
        decided = collector.post(
            f"/api/v1/survey-responses/{newest_response(db)}/decision",
            json={"decision": "accept"},
            headers=as_staff,
        )
        assert decided.status_code == 200


def flags_of(collector, as_staff: dict, rid: int) -> dict:
    return collector.get(f"/api/v1/survey-responses/{rid}", headers=as_staff).get_json()["flags"]


def test_a_number_far_from_the_other_members_is_flagged_by_its_robust_z_score(collector, db):
    make_survey(db)
    as_staff = staff_api(db)
    accepted_peers(collector, db, as_staff, [90, 100, 110, 120, 130])
    far, near = make_account(db), make_account(db)
    db.commit()
    submit(collector, far, 400)  # median 110, MAD 10: z = 0.6745 * 290 / 10 = 19.6
    far_id = newest_response(db)
    submit(collector, near, 150)  # z = 0.6745 * 40 / 10 = 2.7
    near_id = newest_response(db)

    assert flags_of(collector, as_staff, far_id) == {"employees": ["peers"]}
    assert flags_of(collector, as_staff, near_id) == {}
    listed = collector.get("/api/v1/survey-responses?flagged=true", headers=as_staff).get_json()
    assert [r["id"] for r in listed] == [far_id]
    unflagged = collector.get(
        "/api/v1/survey-responses?flagged=false&status=submitted", headers=as_staff
    )
    assert [r["id"] for r in unflagged.get_json()] == [near_id]
    signed_in_staff(collector, db)
    page = collector.get(f"/staff/responses/{far_id}").get_data(as_text=True)
    assert "far from others</span>" in page
    flagged_page = collector.get("/staff/responses?flagged=yes").get_data(as_text=True)
    assert f'href="/staff/responses/{far_id}"' in flagged_page
    assert f'href="/staff/responses/{near_id}"' not in flagged_page


def test_no_peer_flag_with_fewer_than_five_others_or_no_spread(collector, db):
    make_survey(db)
    as_staff = staff_api(db)
    accepted_peers(collector, db, as_staff, [100, 100, 100, 100, 100, 100])
    alone = make_account(db)
    db.commit()
    submit(collector, alone, 100000)
    assert flags_of(collector, as_staff, newest_response(db)) == {}  # MAD 0: no scale

    db.execute(AuditLog.__table__.delete())  # nothing else reads these rows here
    db.execute(
        SurveyResponse.__table__.update()
        .where(SurveyResponse.status == "accepted", SurveyResponse.id > 0)
        .values(accepted_revision=None, status="submitted")
    )
    db.commit()
    accepted_peers(collector, db, as_staff, [90, 100, 110, 120])
    assert flags_of(collector, as_staff, newest_response(db)) == {}  # four others only


def test_staff_return_a_response_with_a_message_the_member_reads_and_answers(collector, db):
    make_survey(db)
    as_staff = staff_api(db)
    token = make_account(db)
    db.commit()
    as_member = {"Authorization": f"Bearer {token}"}
    submit(collector, token, 120)
    rid = newest_response(db)
    path = f"/api/v1/survey-responses/{rid}/decision"

    empty = collector.post(path, json={"decision": "reject", "reason": " "}, headers=as_staff)
    assert empty.status_code == 422
    assert "what to correct" in empty.get_json()["message"]
    message = "Employees look like last year's <b>headcount</b>; check them."
    returned = collector.post(
        path, json={"decision": "reject", "reason": message}, headers=as_staff
    )
    assert returned.status_code == 200

    seen = collector.get("/api/v1/surveys/2025", headers=as_member).get_json()
    assert seen["status"] == "rejected" and seen["staff_message"] == message
    resubmitted = submit(collector, token, 125)
    assert resubmitted["status"] == "submitted" and "staff_message" not in resubmitted
    accepted = collector.post(path, json={"decision": "accept", "revision": 2}, headers=as_staff)
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"


def test_the_member_page_shows_the_staff_message_escaped(collector, db):
    signed_in_member(collector, db)
    as_staff = staff_api(db)
    post_form(collector, "/member/surveys/2025", {"action": "submit", **FORM_ANSWERS})
    collector.post(
        f"/api/v1/survey-responses/{newest_response(db)}/decision",
        json={"decision": "reject", "reason": "Fix <script>x</script> please"},
        headers=as_staff,
    )

    page = collector.get("/member/surveys/2025").get_data(as_text=True)

    assert "Returned for correction." in page
    assert "Fix &lt;script&gt;x&lt;/script&gt; please" in page


def test_a_decision_on_a_revision_the_member_has_since_replaced_is_refused(collector, db):
    make_survey(db)
    as_staff = staff_api(db)
    token = make_account(db)
    db.commit()
    submit(collector, token, 120)
    rid = newest_response(db)
    submit(collector, token, 130)  # revision 2, saved while staff were reading revision 1

    late = collector.post(
        f"/api/v1/survey-responses/{rid}/decision",
        json={"decision": "accept", "revision": 1},
        headers=as_staff,
    )

    assert late.status_code == 409
    assert "revision 2 after the one you reviewed (1)" in late.get_json()["message"]
    db.rollback()
    found = db.get(SurveyResponse, rid)
    assert (found.status, found.accepted_revision) == ("submitted", None)


def test_bulk_accept_takes_unflagged_unchanged_responses_and_says_why_it_skips_others(
    collector, db
):
    make_survey(db)
    as_staff = staff_api(db)
    accepted_peers(collector, db, as_staff, [90, 100, 110, 120, 130])
    tokens = [make_account(db) for _ in range(3)]
    db.commit()
    ids = []
    for token, employees in zip(tokens, (105, 5000, 115), strict=True):
        submit(collector, token, employees)
        ids.append(newest_response(db))
    submit(collector, tokens[2], 116)  # changed after the list was read: now revision 2
    chosen = [{"id": i, "revision": 1} for i in ids] + [{"id": 2**31 - 1, "revision": 1}]

    answer = collector.post(
        "/api/v1/survey-responses/bulk-accept", json={"responses": chosen}, headers=as_staff
    )

    assert answer.status_code == 200
    body = answer.get_json()
    assert body["accepted"] == [ids[0]]
    reasons = {s["id"]: s["reason"] for s in body["skipped"]}
    assert "Flagged (employees)" in reasons[ids[1]]
    assert "review it again" in reasons[ids[2]]
    assert reasons[2**31 - 1] == "No such survey response."
    db.rollback()
    statuses = dict(db.execute(select(SurveyResponse.id, SurveyResponse.status)).all())
    assert [statuses[i] for i in ids] == ["accepted", "submitted", "submitted"]
    actions = db.scalars(select(AuditLog.action).where(AuditLog.object_id == str(ids[0]))).all()
    assert "survey.accepted" in actions
    too_many = [{"id": 1, "revision": 1}] * 501
    for bad in ([], too_many, [{"id": "x", "revision": 1}]):
        refused = collector.post(
            "/api/v1/survey-responses/bulk-accept", json={"responses": bad}, headers=as_staff
        )
        assert refused.status_code == 422


def test_bulk_accept_from_the_list_page(collector, db):
    make_survey(db)
    token = make_account(db)
    db.commit()
    submit(collector, token, 120)
    rid = newest_response(db)
    signed_in_staff(collector, db)
    listing = collector.get("/staff/responses?status=submitted").get_data(as_text=True)
    assert f'value="{rid}:1"' in listing

    done = post_form(
        collector,
        "/staff/responses/accept",
        {"response": f"{rid}:1"},
        token_from="/staff/responses",
    )

    assert done.status_code == 302
    db.rollback()
    assert db.get(SurveyResponse, rid).status == "accepted"
    assert "Accepted 1 of 1." in collector.get(done.headers["Location"]).get_data(as_text=True)
    bad = post_form(
        collector, "/staff/responses/accept", {"response": "1;2"}, token_from="/staff/responses"
    )
    assert bad.status_code == 400


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
