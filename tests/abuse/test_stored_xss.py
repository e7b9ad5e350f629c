"""Stored HTML/JS comes back as text on every collector page and on the dashboard."""

import json
import re

import pytest
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import escape
from sqlalchemy import func, select

from aggregator.build import build_snapshot, release_if_due
from collector import create_app
from collector.surveys import decide_response
from outcomes.db import get_engine
from outcomes.models import (
    Application,
    CaseStudy,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
)
from tests.abuse.support import page_answer
from tests.collector.web import PASSWORD, make_login, post_form, sign_in, writing
from tests.conftest import serving
from tests.factories import make_account, make_snapshot, make_survey

XSS = "<script>alert(1)</script>\"><img src=x onerror=alert(1)>'><svg onload=alert(1)>"
# What a page holds if the text was pasted in as markup instead of shown as text.
MARKUP = re.compile(r"<script>alert|<img src=x|<svg onload", re.IGNORECASE)
BAD_LINKS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://example.org/file",
]
RECORDS = {
    "members": {
        "name": XSS,
        "membership_class": "Civil Society",
        "country": "GH",
        "joined_on": "2021-03-01",
    },
    "auditing_firms": {"name": XSS, "accredited_on": "2019-01-01", "countries": "DE"},
    "trainings": {
        "person_key": XSS[:64],
        "role": "auditor",
        "course": XSS,
        "completed_on": "2023-06-30",
    },
    "case_studies": {
        "title": XSS,
        "country": "GH",
        "summary": XSS,
        "link": "https://example.org/story?q=%22%3E%3Cscript%3E",
    },
}


RECEIPT = "/member/surveys/2025/receipt"  # lists the public indicators, not the text answers


def shows_as_text(page: str) -> bool:
    """Say whether a page shows XSS as text: HTML-escaped, or in JSON the way tojson writes it."""
    return str(escape(XSS)) in page or str(htmlsafe_json_dumps(XSS))[1:-1] in page


def assert_escaped(client, address: str, *, shown: bool = True) -> None:
    answer = client.get(address)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, (address, answer.status_code)
    assert not MARKUP.search(page), f"{address} holds the text as markup"
    if shown:
        assert shows_as_text(page), f"{address} does not show the stored text"


def add_survey_with_a_text_question(db):
    """An open 2025 survey whose question texts (set by staff) are themselves hostile."""
    definition = make_survey(db)
    db.add(
        SurveyQuestion(
            definition_id=definition.id,
            position=9,
            key="story",
            label=XSS,
            type="text",
            unit="",
            minimum=None,
            maximum=None,
            required=False,
            aggregation="none",
            help_text=XSS,
            choices=[],
        )
    )
    db.commit()


def test_every_collector_page_shows_stored_markup_as_text(collector, db):
    add_survey_with_a_text_question(db)
    member, staff = make_login(db), make_login(db, role="staff", admin=True)
    db.commit()
    # An applicant, through the public form.
    application = {
        "organisation": XSS,
        "membership_class": "Civil Society",
        "country": "GH",
        "contact_name": XSS,
        "contact_email": "x@example.org",
        "facility-0-name": XSS,
        "facility-0-country": "DE",
        "facility-0-people": "5",
        "certification-0-name": XSS,
        "accepts_code_of_conduct": "yes",
    }
    assert post_form(collector, "/apply", application).status_code == 302
    reference = db.scalar(select(Application.reference))
    # A member: survey answers and a token name.
    sign_in(collector, member)
    assert_escaped(collector, "/member/surveys/2025")
    answers = {"employees": "10", "women_share": "20", "story": XSS, "action": "submit"}
    assert post_form(collector, "/member/surveys/2025", answers).status_code == 302
    assert post_form(collector, "/member/tokens", {"name": XSS[:100]}).status_code == 200
    db.rollback()
    revision = db.scalar(select(func.max(SurveyRevision.id)))
    for address in (
        "/member",
        "/member/surveys/2025",
        "/member/surveys/2025/history",
        RECEIPT,
        "/member/tokens",
    ):
        assert_escaped(collector, address, shown=address not in ("/member", RECEIPT))
    assert_escaped(collector, f"/member/revisions/{revision}")
    post_form(collector, "/logout", {}, token_from="/member")
    # Staff: records by form, a rejection reason, a withdrawal reason, reflected filters.
    sign_in(collector, staff)
    for kind, row in RECORDS.items():
        answer = post_form(collector, f"/staff/records/{kind}", row)
        assert answer.status_code == 302, (kind, answer.get_data(as_text=True)[-2000:])
    db.rollback()
    response_id = db.scalar(select(SurveyResponse.id))
    answer = post_form(
        collector, f"/staff/responses/{response_id}", {"decision": "reject", "reason": XSS}
    )
    assert answer.status_code == 302
    answer = post_form(
        collector, f"/staff/applications/{reference}", {"decision": "reject", "reason": XSS}
    )
    assert answer.status_code == 302
    writing(db)
    snapshot = make_snapshot(db, [("board_meetings", "all", "total", "", 3, 3)])
    db.commit()
    answer = post_form(
        collector,
        f"/staff/snapshots/{snapshot.id}/withdraw",
        {"reason": XSS},
        token_from="/staff/snapshots",
    )
    assert answer.status_code == 302
    for address in (
        "/staff/applications",
        f"/staff/applications/{reference}",
        "/staff/responses",
        f"/staff/responses/{response_id}",
        "/staff/snapshots",
        "/staff/audit",
        "/staff/audit?" + "&".join(f"{k}={XSS}" for k in ("action", "object_type", "actor")),
        *(f"/staff/records/{kind}" for kind in RECORDS),
    ):
        assert_escaped(collector, address, shown=address != "/staff/responses")
    definition = db.scalar(select(SurveyQuestion.definition_id))
    assert_escaped(collector, f"/staff/surveys/{definition}")
    assert_escaped(collector, "/staff/surveys", shown=False)
    assert_escaped(collector, "/staff/accounts", shown=False)


@pytest.mark.parametrize("link", BAD_LINKS)
def test_a_case_study_link_must_be_a_web_address_by_form_and_by_import(collector, db, link):
    staff = make_login(db, role="staff")
    token = make_account(db, role="staff")
    db.commit()
    sign_in(collector, staff)

    by_form = post_form(
        collector, "/staff/records/case_studies", {**RECORDS["case_studies"], "link": link}
    )
    csv = f'title,member_id,country,summary,link\nStory,,GH,Summary,"{link}"\n'
    by_import = collector.post(
        "/api/v1/imports/case_studies",
        data=csv.encode(),
        content_type="text/csv",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert by_form.status_code == 422
    assert by_import.status_code == 422, by_import.json
    assert "link" in json.dumps(by_import.json["errors"])
    db.rollback()
    assert db.scalar(select(func.count()).select_from(CaseStudy)) == 0


def publish_hostile_texts(settings, db) -> None:
    """Case studies with hostile titles and links, and a survey indicator with a hostile title."""
    add_survey_with_a_text_question(db)
    writing(db)
    question = db.scalar(select(SurveyQuestion).where(SurveyQuestion.key == "employees"))
    question.label = XSS
    token, staff = make_account(db), make_login(db, role="staff")
    db.commit()
    answers = {"status": "submitted", "answers": {"employees": 10, "women_share": 20.0}}
    sent = (
        create_app(settings)
        .test_client()
        .put("/api/v1/surveys/2025", json=answers, headers={"Authorization": f"Bearer {token}"})
    )
    assert sent.status_code == 200, sent.json
    writing(db)
    response = db.scalar(select(SurveyResponse))
    decide_response(db, settings, response=response, staff=staff, accept=True)
    db.add_all(
        [
            CaseStudy(title=XSS, country="GH", summary=XSS, link="https://example.org/a"),
            # Stored before links were checked, or written past the collector.
            CaseStudy(title="Old story", country="DE", summary=XSS, link="javascript:alert(1)"),
            CaseStudy(title="Odd story", country="DE", summary="s", link=" JAVASCRIPT:alert(1)"),
        ]
    )
    db.commit()
    engine = get_engine(settings.database_url)
    built = build_snapshot(engine, trigger="test", force=True)
    assert release_if_due(engine, snapshot_id=built.snapshot_id, auto_release=True)


def props(node):
    """Yield the props of every component in a Dash layout (as JSON)."""
    if isinstance(node, list):
        for item in node:
            yield from props(item)
    elif isinstance(node, dict):
        if "props" in node:
            yield node["props"]
        for value in node.values():
            yield from props(value)


def test_the_dashboard_sends_stored_markup_as_text_and_drops_script_links(settings, db, dashboard):
    publish_hostile_texts(settings, db)

    page = page_answer(dashboard, "/", "").get_json()
    embed = page_answer(dashboard, "/embed/survey_employees", "").get_json()
    own = page_answer(dashboard, "/indicator/survey_employees", "").get_json()

    # Dash hands React text children, which it never parses as markup; only hrefs could run.
    texts = [p["children"] for p in props(page) if isinstance(p.get("children"), str)]
    assert texts.count(XSS) >= 3  # a case study's title and summary, the survey tile's title
    assert {"Old story", "Odd story"} <= set(texts)
    hrefs = [p["href"] for p in props(page) if "href" in p]
    assert "https://example.org/a" in hrefs
    # Same-page anchors (the skip links) are safe too.
    safe = ("/", "?", "#", "https://", "http://")
    assert not [h for h in hrefs if not h.startswith(safe)], hrefs
    assert not any(p.get("dangerously_allow_html") for p in props([page, embed, own]))
    assert XSS in [p.get("children") for p in props(embed)]
    assert XSS in [p.get("children") for p in props(own)]  # the indicator page's title


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_in_chromium_no_stored_script_runs_on_the_dashboard_or_a_staff_page(browser, settings, db):
    publish_hostile_texts(settings, db)
    staff = make_login(db, role="staff")
    db.commit()
    dialogs = []
    # Without the Content-Security-Policy, so this checks the escaping alone.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with serving("dashboard", settings) as base:
        page.goto(base + "/")
        page.locator("#case-studies").wait_for(timeout=30000)
        page.locator("#tile-survey_employees").wait_for(timeout=30000)
        assert page.get_by_text(XSS).count() >= 3  # two case study fields and the tile title
        injected = page.locator("img[src='x'], svg[onload]")
        assert page.locator("a[href*='javascript' i]").count() == 0
        dashboard_injected = injected.count()
    with serving("collector", settings) as base:
        page.goto(base + "/login")
        page.fill("#email", staff.email)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(base + "/staff/records/case_studies")
        page.get_by_text(XSS).first.wait_for(timeout=10000)
        collector_injected = page.locator("img[src='x'], svg[onload]").count()
    context.close()
    assert dialogs == []
    assert dashboard_injected == 0
    assert collector_injected == 0
