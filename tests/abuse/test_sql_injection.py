"""SQL-injection strings in every text field and filter: stored byte-identical or refused, never
a 5xx, and no other row touched."""

import csv
import io
from urllib.parse import quote

import pytest
from sqlalchemy import select

from outcomes.models import CaseStudy, Member, SurveyQuestion
from tests.abuse.support import page_answer, row_counts
from tests.collector.web import make_login, post_form, sign_in, writing
from tests.factories import make_account, make_survey

SQLI = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '" OR ""="',
    "1; DROP TABLE member; --",
    "'); DELETE FROM survey_response; --",
    "1' UNION SELECT password_hash, email FROM user_account --",
    "%27 OR 1=1 --",
    "\u2019 OR \u20181\u2019=\u20181\u2019 --",  # curly quotes some databases fold to '
    "\uff07 OR 1=1 --",  # fullwidth apostrophe
    "\\'; SELECT pg_sleep(5); --",
    "admin'/*",
    "%_%",  # LIKE wildcards: must match only themselves
]
# A NUL cannot be stored in PostgreSQL: it must be refused (4xx) wherever it comes.
NUL = "x\x00' OR 1=1 --"
APPLICATION = {
    "membership_class": "Civil Society",
    "country": "GH",
    "contact_email": "a@example.org",
    "accepts_code_of_conduct": True,
}


@pytest.fixture
def world(collector, db):
    """A survey with a text question, a member token, a staff token and login."""
    definition = make_survey(db)
    db.add(
        SurveyQuestion(
            definition_id=definition.id,
            position=9,
            key="story",
            label="Your story",
            type="text",
            unit="",
            required=False,
            aggregation="none",
            help_text="",
            choices=[],
        )
    )
    member, staff = make_account(db), make_account(db, role="staff")
    db.commit()
    return {"Authorization": f"Bearer {member}"}, {"Authorization": f"Bearer {staff}"}


def test_api_text_fields_store_sql_strings_byte_identical(collector, db, world):
    member, staff = world
    for number, text in enumerate(SQLI):
        application = {
            **APPLICATION,
            "organisation": f"Org {number} {text}",
            "contact_name": text,
            "facilities": [{"name": text, "country": "DE", "people": 3}],
            "external_certifications": [{"name": text}],
        }
        # Each from an address of its own: applying is limited to 10 an hour per address.
        address = {"REMOTE_ADDR": f"10.9.0.{number + 1}"}
        answer = collector.post("/api/v1/applications", json=application, environ_base=address)
        assert answer.status_code == 201, (text, answer.json)
        reference = answer.json["reference"]
        decision = {"decision": "reject", "reason": text}
        answer = collector.post(
            f"/api/v1/applications/{reference}/decision", json=decision, headers=staff
        )
        assert answer.status_code == 200, (text, answer.json)
        answers = {"answers": {"employees": 1, "women_share": 2.0, "story": text}}
        answer = collector.put(
            "/api/v1/surveys/2025", json=answers, headers={**member, "Idempotency-Key": text}
        )
        assert answer.status_code == 200, (text, answer.json)
        assert (
            collector.get("/api/v1/surveys/2025", headers=member).json["answers"]["story"] == text
        )

    stored = collector.get("/api/v1/applications", headers=staff).json
    assert len(stored) == len(SQLI)
    for found in stored:
        text = SQLI[int(found["organisation"].split()[1])]
        assert found["organisation"].split(" ", 2)[2] == text
        assert found["contact_name"] == text
        assert found["decision_reason"] == text
        assert found["details"]["facilities"][0]["name"] == text
        assert found["details"]["external_certifications"][0]["name"] == text


def test_csv_imports_and_record_forms_store_sql_strings_byte_identical(collector, db, world):
    _member, staff = world
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["title", "member_id", "country", "summary", "link"])
    writer.writerows([text, "", "GH", text, ""] for text in SQLI)
    answer = collector.post(
        "/api/v1/imports/case_studies",
        data=out.getvalue().encode(),
        content_type="text/csv",
        headers=staff,
    )
    assert answer.status_code == 201, answer.json
    writing(db)
    login = make_login(db, role="staff")
    db.commit()
    sign_in(collector, login)
    for text in SQLI:
        row = {"name": text, "membership_class": "Civil Society", "country": "GH"}
        answer = post_form(collector, "/staff/records/members", {**row, "joined_on": "2020-01-01"})
        assert answer.status_code == 302, (text, answer.get_data(as_text=True)[-1500:])
    db.rollback()
    assert sorted(db.scalars(select(CaseStudy.title))) == sorted(SQLI)
    assert sorted(db.scalars(select(CaseStudy.summary))) == sorted(SQLI)
    assert set(SQLI) <= set(db.scalars(select(Member.name)))


def test_a_nul_is_refused_in_every_kind_of_input_and_nothing_is_written(collector, db, world):
    member, staff = world
    before = row_counts(db)
    upload = f"title,member_id,country,summary,link\n{NUL},,GH,s,\n".encode()
    answers = [
        collector.post("/api/v1/applications", json={**APPLICATION, "organisation": NUL}),
        collector.put(
            "/api/v1/surveys/2025",
            json={"answers": {"employees": 1, "women_share": 2.0, "story": NUL}},
            headers=member,
        ),
        collector.put(
            "/api/v1/surveys/2025",
            json={"answers": {"employees": 1, "women_share": 2.0}},
            headers={**member, "Idempotency-Key": NUL},
        ),
        collector.post(
            "/api/v1/imports/case_studies", data=upload, content_type="text/csv", headers=staff
        ),
        collector.post(
            f"/api/v1/applications/{quote(NUL)}/decision",
            json={"decision": "approve"},
            headers=staff,
        ),
        collector.get(f"/api/v1/aggregations/{quote(NUL)}", headers=staff),
        collector.get(f"/login?next={quote(NUL)}"),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 422, 400, 400, 400]
    assert all(a.status_code < 500 for a in answers)
    assert row_counts(db) == before


def test_filters_and_path_parts_with_sql_strings_answer_4xx_or_a_harmless_page(
    collector, db, world
):
    _member, staff = world
    writing(db)
    login = make_login(db, role="staff")
    db.commit()
    sign_in(collector, login)
    # Something the audit log filter could wrongly match if the text became SQL.
    post_form(collector, "/staff/records/meetings", {"body": "board", "held_on": "2024-02-15"})
    before = row_counts(db)
    for text in [*SQLI, NUL]:
        part = quote(text, safe="")
        for address in (
            *(f"/staff/audit?{key}={part}" for key in ("action", "object_type", "actor")),
            f"/staff/audit?since={part}&until={part}",
            f"/staff/applications/{part}",
            f"/staff/aggregations/{part}",
            f"/staff/records/{part}",
            f"/staff/imports/{part}/template.csv",
            f"/api/v1/applications/{part}/decision",
            f"/api/v1/aggregations/{part}",
            f"/api/v1/surveys/{part}",
        ):
            method = "POST" if address.endswith("/decision") else "GET"
            answer = collector.open(
                address, method=method, headers=staff, json={"decision": "approve"}
            )
            assert answer.status_code < 500, (address, answer.status_code)
            if address.startswith("/staff/audit?") and "since" not in address:
                # A filter that is text matches itself only: no row of the log has it.
                page = answer.get_data(as_text=True)
                assert answer.status_code == 400 or "import.meetings" not in page, address
    assert row_counts(db) == before


def test_dashboard_filters_with_sql_strings_answer_a_message_and_change_nothing(
    dashboard, db, world
):
    before = row_counts(db)
    for text in [*SQLI, NUL]:
        part = quote(text, safe="")
        for key in ("year", "country", "standard", "membership_class", "snapshot", "indicator"):
            assert page_answer(dashboard, "/", f"?{key}={part}").status_code == 200
        for address in (f"/api/v1/snapshots/{part}", f"/api/v1/snapshots/latest?format={part}"):
            assert dashboard.get(address).status_code in (400, 404), address
    assert row_counts(db) == before


def test_numbers_past_what_the_database_holds_answer_4xx_in_paths_and_forms(collector, db, world):
    member_token, _staff = world
    writing(db)
    member, staff = make_login(db), make_login(db, role="staff")
    db.commit()
    huge = ["2147483648", "99999999999", "-99999999999", "9" * 30]
    sign_in(collector, staff)
    before = row_counts(db)
    answers = {}
    for number in huge:
        for form in ("copy", "import"):
            answers[f"/staff/surveys/{form} {number}"] = post_form(
                collector, f"/staff/surveys/{form}", {"year": number}, token_from="/staff/surveys"
            ).status_code
        for address in (f"/staff/responses/{number}", f"/staff/surveys/{number}"):
            answers[address] = collector.get(address).status_code
        answers[f"/api/v1/surveys/{number}"] = collector.get(
            f"/api/v1/surveys/{number}", headers=member_token
        ).status_code
    post_form(collector, "/logout", {}, token_from="/staff")
    sign_in(collector, member)
    for number in huge:
        for address in (f"/member/surveys/{number}", f"/member/revisions/{number}"):
            answers[address] = collector.get(address).status_code
    assert {a: s for a, s in answers.items() if not 400 <= s < 500} == {}
    # The sign-out and the sign-in are audited; the staff session made way for the member's.
    assert row_counts(db) == before | {"audit_log": before["audit_log"] + 2}
