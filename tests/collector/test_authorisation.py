"""Every API route x anonymous / member A / member B / staff: each cell asserted."""

from datetime import date

import pytest
from sqlalchemy import func, select

from collector import create_app
from outcomes.models import (
    Application,
    Campaign,
    ExternalCertification,
    Meeting,
    Outbox,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.queries import survey_questions
from tests.collector.web import csrf_token, make_login, sign_in, writing
from tests.factories import make_account, make_snapshot, make_survey

ANSWERS = {"answers": {"employees": 120, "women_share": 31.5, "human_rights_policy": True}}
APPLICATION = {
    "organisation": "Bauxite Co",
    "membership_class": "Civil Society",
    "country": "GH",
    "contact_name": "Ama Mensah",
    "contact_email": "ama@bauxite.example",
    "accepts_code_of_conduct": True,
}
ACTORS = ("anonymous", "member_a", "member_b", "staff")

# (method, route, body) -> expected status for anonymous, member A, member B, staff.
MATRIX = {
    ("POST", "/api/v1/applications", "application"): (201, 201, 201, 201),
    ("GET", "/api/v1/applications", None): (401, 403, 403, 200),
    ("POST", "/api/v1/applications/{reference}/decision", "approve"): (401, 403, 403, 200),
    # Member B has no response of its own for 2025: it cannot see member A's.
    ("GET", "/api/v1/surveys/{year}", None): (401, 200, 404, 403),
    ("PUT", "/api/v1/surveys/{year}", "answers"): (401, 200, 200, 403),
    ("GET", "/api/v1/surveys/{year}/questions", None): (401, 200, 200, 403),
    ("POST", "/api/v1/aggregations", None): (401, 403, 403, 202),
    ("GET", "/api/v1/aggregations/{job}", None): (401, 403, 403, 200),
    ("POST", "/api/v1/imports/{kind}", "csv"): (401, 403, 403, 201),
    ("GET", "/api/v1/imports/{kind}/template.csv", None): (401, 403, 403, 200),
    ("GET", "/api/v1/records/{kind}", None): (401, 403, 403, 200),
    ("GET", "/api/v1/records/{kind}/{record_id}", None): (401, 403, 403, 200),
    ("PUT", "/api/v1/records/{kind}/{record_id}", "meeting"): (401, 403, 403, 200),
    ("GET", "/api/v1/survey-definitions", None): (401, 403, 403, 200),
    ("POST", "/api/v1/survey-definitions", "new_year"): (401, 403, 403, 201),
    ("GET", "/api/v1/survey-definitions/{definition_id}", None): (401, 403, 403, 200),
    # A workbook comes as a multipart upload (tests/collector/test_xlsform_import.py): none here.
    ("POST", "/api/v1/survey-definitions/import", None): (401, 403, 403, 422),
    ("POST", "/api/v1/survey-definitions/{definition_id}/status", "open"): (401, 403, 403, 200),
    ("POST", "/api/v1/survey-definitions/{definition_id}/questions", "question"): (
        401,
        403,
        403,
        201,
    ),
    ("PUT", "/api/v1/survey-definitions/{definition_id}/questions/{question_id}", "question"): (
        401,
        403,
        403,
        200,
    ),
    ("DELETE", "/api/v1/survey-definitions/{definition_id}/questions/{question_id}", None): (
        401,
        403,
        403,
        204,
    ),
    ("GET", "/api/v1/survey-responses", None): (401, 403, 403, 200),
    ("GET", "/api/v1/survey-responses/{response_id}", None): (401, 403, 403, 200),
    ("POST", "/api/v1/survey-responses/{response_id}/decision", "accept"): (401, 403, 403, 200),
    ("POST", "/api/v1/survey-responses/bulk-accept", "bulk"): (401, 403, 403, 200),
    ("GET", "/api/v1/exports/answers.csv", None): (401, 403, 403, 200),
    ("GET", "/api/v1/exports/responses.csv", None): (401, 403, 403, 200),
    ("GET", "/api/v1/exports/responses.xlsx", None): (401, 403, 403, 200),
    ("GET", "/api/v1/external-certifications", None): (401, 403, 403, 200),
    ("POST", "/api/v1/external-certifications", "new_scheme"): (401, 403, 403, 201),
    ("GET", "/api/v1/external-certifications/{certification_id}", None): (401, 403, 403, 200),
    ("PUT", "/api/v1/external-certifications/{certification_id}", "scheme_change"): (
        401,
        403,
        403,
        200,
    ),
    ("POST", "/api/v1/external-certifications/{certification_id}/retire", None): (
        401,
        403,
        403,
        200,
    ),
    ("GET", "/api/v1/campaigns", None): (401, 403, 403, 200),
    # The world's 2025 campaign is open already: staff are told so.
    ("POST", "/api/v1/campaigns", "campaign"): (401, 403, 403, 409),
    ("GET", "/api/v1/campaigns/{year}", None): (401, 403, 403, 200),
    ("GET", "/api/v1/builds", None): (401, 403, 403, 200),
    ("GET", "/api/v1/builds/{build_id}/changes", None): (401, 403, 403, 200),
    ("POST", "/api/v1/builds/{build_id}/preview", None): (401, 403, 403, 201),
    ("POST", "/api/v1/builds/{build_id}/release", "release"): (401, 403, 403, 200),
    # The world's build is not released: staff are told that only a release can be withdrawn.
    ("POST", "/api/v1/builds/{build_id}/withdraw", "withdraw"): (401, 403, 403, 409),
}
BODIES = {
    "application": APPLICATION,
    "approve": {"decision": "approve"},
    "answers": ANSWERS,
    "csv": b"body,held_on\nboard,2024-02-15\n",
    "meeting": {"values": {"body": "standards_committee", "held_on": "2024-03-01"}},
    "new_year": {"year": 2026},
    "open": {"status": "open"},
    "question": {
        "key": "water_use",
        "label": "Water used",
        "type": "decimal",
        "aggregation": "sum",
    },
    "accept": {"decision": "accept"},
    "bulk": {"responses": [{"id": 1, "revision": 1}]},
    "new_scheme": {"code": "ISO45001", "name": "ISO 45001", "valid_from": "2018-03-12"},
    "scheme_change": {"name": "ISO 14001:2015", "valid_from": "2015-09-15"},
    "release": {"title": "2025 annual results", "notes": "First release."},
    "withdraw": {"reason": "Two audits were counted twice."},
    "campaign": {"year": 2025, "due_on": "2099-03-31"},
}


@pytest.fixture
def world(collector, db):
    """Member A with a 2025 response, member B without, a staff token, an application, a job,
    a meeting and a draft 2027 survey."""
    make_survey(db)
    draft = make_survey(db, year=2027, status="draft")
    tokens = {
        "member_a": make_account(db),
        "member_b": make_account(db),
        "staff": make_account(db, role="staff"),
    }
    db.commit()
    a = {"Authorization": f"Bearer {tokens['member_a']}"}
    assert collector.put("/api/v1/surveys/2025", json=ANSWERS, headers=a).status_code == 200
    applied = collector.post("/api/v1/applications", json=APPLICATION)
    assert applied.status_code == 201, applied.get_data(as_text=True)
    reference = applied.json["reference"]
    job = db.scalar(select(Outbox.job_id))
    writing(db)  # a worker may have published since the read above
    meeting = Meeting(body="board", held_on=date(2024, 2, 15))
    scheme = ExternalCertification(code="ISO14001", name="ISO 14001", valid_from=date(2015, 1, 1))
    campaign = Campaign(year=2025, due_on=date(2099, 3, 31), reminder_days=[])
    db.add_all([meeting, scheme, campaign])
    make_snapshot(db, [], status="released", as_of=date(2025, 1, 1))
    built = make_snapshot(db, [], status="built")
    db.commit()
    ids = {"reference": reference, "year": campaign.year, "job": job, "kind": "meetings"}
    question = db.scalar(select(SurveyQuestion.id).where(SurveyQuestion.definition_id == draft.id))
    return tokens, {
        **ids,
        "record_id": meeting.id,
        "certification_id": scheme.id,
        "definition_id": draft.id,
        "question_id": question,
        "response_id": db.scalar(select(SurveyResponse.id)),
        "build_id": built.id,
    }


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("cell", list(MATRIX), ids=lambda cell: f"{cell[0]} {cell[1]}")
def test_each_route_answers_each_kind_of_caller_as_the_matrix_says(
    collector, db, world, cell, actor
):
    tokens, ids = world
    method, route, body = cell
    headers = {"Authorization": f"Bearer {tokens[actor]}"} if actor in tokens else {}
    payload = BODIES.get(body)
    sent = (
        {"data": payload, "content_type": "text/csv"}
        if isinstance(payload, bytes)
        else {"json": payload}
    )
    answer = collector.open(route.format(**ids), method=method, headers=headers, **sent)
    expected = MATRIX[cell][ACTORS.index(actor)]
    assert answer.status_code == expected, answer.json
    if expected >= 400:
        assert answer.json["errors"]


def test_a_member_writing_its_survey_never_touches_another_members_response(collector, db, world):
    tokens, _ids = world
    b = {"Authorization": f"Bearer {tokens['member_b']}"}
    collector.put(
        "/api/v1/surveys/2025", json={"answers": {**ANSWERS["answers"], "employees": 7}}, headers=b
    )
    a = {"Authorization": f"Bearer {tokens['member_a']}"}
    assert collector.get("/api/v1/surveys/2025", headers=a).json["answers"]["employees"] == 120
    db.rollback()
    assert db.scalar(select(func.count()).select_from(SurveyRevision)) == 2


def test_the_matrix_covers_every_api_route_and_the_openapi_document_describes_them(settings):
    app = create_app(settings)
    routes = {
        (method, rule.rule.replace("<int:", "{").replace("<string:", "{").replace(">", "}"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(method, route) for method, route, _body in MATRIX}
    spec = app.test_client().get("/api/openapi.json").json
    for method, route in routes:
        operation = spec["paths"][route][method.lower()]
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), (method, route)
        assert codes & {"401", "422"}, (method, route)
        assert operation.get("summary") or operation.get("description"), (method, route)


def test_a_public_application_never_needs_a_token_but_is_validated(collector, db):
    answer = collector.post("/api/v1/applications", json={"organisation": "X"})
    assert answer.status_code == 422
    assert db.scalar(select(func.count()).select_from(Application)) == 0


# The staff pages added with record editing, draft questions and external certifications:
# (method, page, form) -> expected status for anonymous, member A, member B, staff.
PAGES = {
    ("GET", "/staff/records/{kind}/{record_id}", None): (302, 403, 403, 200),
    ("POST", "/staff/records/{kind}/{record_id}", "meeting"): (302, 403, 403, 302),
    ("GET", "/staff/surveys/{definition_id}/questions/new", None): (302, 403, 403, 200),
    ("POST", "/staff/surveys/{definition_id}/questions/new", "question"): (302, 403, 403, 302),
    ("GET", "/staff/surveys/{definition_id}/questions/{question_id}", None): (302, 403, 403, 200),
    ("POST", "/staff/surveys/{definition_id}/questions/{question_id}", "question"): (
        302,
        403,
        403,
        302,
    ),
    ("POST", "/staff/surveys/{definition_id}/questions/{question_id}/delete", None): (
        302,
        403,
        403,
        302,
    ),
    ("GET", "/staff/external-certifications", None): (302, 403, 403, 200),
    ("POST", "/staff/external-certifications", "scheme"): (302, 403, 403, 302),
    ("GET", "/staff/external-certifications/{certification_id}", None): (302, 403, 403, 200),
    ("POST", "/staff/external-certifications/{certification_id}", "scheme"): (302, 403, 403, 302),
    ("POST", "/staff/external-certifications/{certification_id}/retire", None): (
        302,
        403,
        403,
        302,
    ),
    ("GET", "/staff/campaigns", None): (302, 403, 403, 200),
    ("POST", "/staff/campaigns", "campaign"): (302, 403, 403, 302),
    ("GET", "/staff/campaigns/{year}", None): (302, 403, 403, 200),
}
FORMS = {
    "meeting": {"body": "board", "held_on": "2024-03-01"},
    "question": {"key": "water_use", "label": "Water used", "type": "decimal"},
    "scheme": {"code": "ISO45001", "name": "ISO 45001", "valid_from": "2018-03-12"},
    "campaign": {"year": "2025", "due_on": "2099-03-31", "reminder_days": "-7, 3"},
}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("cell", list(PAGES), ids=lambda cell: f"{cell[0]} {cell[1]}")
def test_each_new_staff_page_answers_each_kind_of_visitor_as_the_matrix_says(
    collector, db, cell, actor
):
    draft = make_survey(db, year=2027, status="draft")
    make_survey(db)  # open, for a campaign
    meeting = Meeting(body="board", held_on=date(2024, 2, 15))
    scheme = ExternalCertification(code="ISO14001", name="ISO 14001", valid_from=date(2015, 1, 1))
    campaign = Campaign(year=2024, due_on=date(2024, 3, 31), reminder_days=[])
    db.add_all([meeting, scheme, campaign])
    db.flush()
    ids = {
        "year": campaign.year,
        "kind": "meetings",
        "record_id": meeting.id,
        "definition_id": draft.id,
        "question_id": db.scalar(
            select(SurveyQuestion.id).where(SurveyQuestion.definition_id == draft.id)
        ),
        "certification_id": scheme.id,
    }
    visitor = None
    if actor != "anonymous":
        visitor = make_login(db, role="staff" if actor == "staff" else "member")
    db.commit()
    if visitor is not None:
        sign_in(collector, visitor)
    method, page, form = cell
    token = csrf_token(collector, "/login" if actor == "anonymous" else "/")

    answer = collector.open(
        page.format(**ids), method=method, data={**FORMS.get(form, {}), "csrf_token": token}
    )

    assert answer.status_code == PAGES[cell][ACTORS.index(actor)], answer.get_data(as_text=True)
    if actor == "anonymous":
        assert answer.headers["Location"].startswith("/login?next=")
    if actor != "staff" or method == "GET":
        db.rollback()
        db.expire_all()
        assert db.get(Meeting, meeting.id).held_on == date(2024, 2, 15)
        assert db.scalars(select(ExternalCertification.valid_until)).all() == [None]
        assert len(survey_questions(db, definition_id=draft.id)) == 3
        assert db.scalars(select(Campaign.year)).all() == [2024]


# Account management: only staff with the admin role; one's own account pages: anyone signed in.
ACCOUNT_ACTORS = ("anonymous", "member", "staff", "admin")
ACCOUNT_PAGES = {
    ("GET", "/staff/accounts"): (302, 403, 403, 200),
    ("POST", "/staff/accounts/{other_staff}/password"): (302, 403, 403, 200),
    ("POST", "/staff/accounts/{member}/password"): (302, 403, 403, 200),
    ("GET", "/account/password"): (302, 200, 200, 200),
    ("GET", "/account/two-factor"): (302, 200, 200, 200),
}


@pytest.mark.parametrize("actor", ACCOUNT_ACTORS)
@pytest.mark.parametrize("cell", list(ACCOUNT_PAGES), ids=" ".join)
def test_only_admins_manage_accounts_and_everyone_signed_in_manages_their_own(
    collector, db, cell, actor
):
    other_staff, member = make_login(db, role="staff"), make_login(db)
    visitor = None
    if actor != "anonymous":
        role = "member" if actor == "member" else "staff"
        visitor = make_login(db, role=role, admin=actor == "admin")
    db.commit()
    if visitor is not None:
        sign_in(collector, visitor)
    method, page = cell
    token = csrf_token(collector, "/login" if actor == "anonymous" else "/")
    before = {user.id: user.password_hash for user in (other_staff, member)}

    answer = collector.open(
        page.format(other_staff=other_staff.id, member=member.id),
        method=method,
        data={"csrf_token": token},
    )

    assert answer.status_code == ACCOUNT_PAGES[cell][ACCOUNT_ACTORS.index(actor)]
    if answer.status_code != 200 or method == "GET":
        db.rollback()
        db.expire_all()
        assert {u.id: u.password_hash for u in (other_staff, member)} == before
