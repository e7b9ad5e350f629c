"""Per-facility repeats: a repeat's questions are answered once for each member facility."""

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from collector.expressions import form_errors, parse
from outcomes.models import Facility, SurveyAnswer, SurveyDefinition, SurveyQuestion
from outcomes.repeats import Asked, expand
from tests.collector.web import make_login, post_form, sign_in
from tests.factories import make_account, make_member

YES_NO = [{"name": "yes", "label": "Yes"}, {"name": "no", "label": "No"}]


def asked(key, logic=None, kind="decimal", required=False):
    return Asked(
        key=key,
        question_key=key,
        facility_id=None,
        label=key.title(),
        help_text="",
        type=kind,
        unit="",
        minimum=None,
        maximum=None,
        required=required,
        choices=[],
        aggregation="none",
        logic=logic or {},
    )


def test_a_repeat_is_asked_once_per_facility_its_rules_reading_the_same_facility():
    repeat = {"repeat": "sites", "section": "Each site"}
    questions = [
        asked("staff", kind="integer"),
        asked("open", {**repeat, "labels": {"en": "Open?", "fr": "Ouvert ?"}}, kind="select_one"),
        asked("energy", {**repeat, "relevant": parse("${open} = 'yes' and ${staff} > 0")}),
        asked("notes", kind="text"),
    ]

    found = expand(questions, [(7, "Plant A"), (9, "Plant B")])

    assert [q.key for q in found] == ["staff", "open@7", "energy@7", "open@9", "energy@9", "notes"]
    energy = found[4]
    assert (energy.question_key, energy.facility_id) == ("energy", 9)
    assert energy.logic["relevant"] == [
        "and",
        ["=", ["ref", "open@9"], ["str", "yes"]],
        [">", ["ref", "staff"], ["num", 0.0]],
    ]
    assert energy.logic["section"] == "Each site: Plant B"
    assert found[1].label == "Open (Plant A)"
    assert found[1].logic["labels"] == {"en": "Open? (Plant A)", "fr": "Ouvert ? (Plant A)"}
    assert questions[2].logic["relevant"] == parse("${open} = 'yes' and ${staff} > 0")
    assert [q.key for q in expand(questions, [])] == ["staff", "notes"]


SCRIPT = Path(__file__).parents[2] / "services/collector/collector/static/form-logic.js"
SITES = {"repeat": "sites", "section": "Each site"}
REPEAT_FORM = [
    asked("has_sites", kind="select_one", required=True),
    asked("open", {**SITES, "relevant": parse("${has_sites} = 'yes'")}, "select_one", True),
    asked(
        "energy",
        {
            **SITES,
            "relevant": parse("${open} = 'yes'"),
            "constraint": parse(". >= 0 and . < ${cap}"),
            "constraint_message": "Between 0 and the cap.",
        },
        required=True,
    ),
    asked("cap", {"default": "100"}),
]
REPEAT_CASES = [  # answers, submitted, keys refused
    ({"has_sites": "no"}, True, []),
    ({"has_sites": "yes"}, True, ["open@1", "open@2"]),
    ({"has_sites": "yes", "open@1": "no", "open@2": "no"}, True, []),
    ({"has_sites": "yes", "open@1": "no", "open@2": "no", "energy@1": 5}, True, ["energy@1"]),
    ({"has_sites": "yes", "open@1": "yes", "open@2": "no", "cap": 10}, True, ["energy@1"]),
    ({"has_sites": "yes", "open@1": "yes", "open@2": "no", "cap": 10}, False, []),
    (
        {
            "has_sites": "yes",
            "open@1": "yes",
            "energy@1": 12,
            "open@2": "yes",
            "energy@2": 3,
            "cap": 10,
        },
        True,
        ["energy@1"],
    ),
    ({"has_sites": "no", "open@2": "yes"}, False, ["open@2"]),
]


def repeat_rules():
    found = expand(REPEAT_FORM, [(1, "A"), (2, "B")])
    return [[q.key, q.required, q.logic, q.choices] for q in found if q.logic]


def test_a_repeats_rules_refuse_per_facility_on_the_server():
    rules = tuple((k, r, logic, tuple(c)) for k, r, logic, c in repeat_rules())
    for answers, submitted, refused in REPEAT_CASES:
        assert sorted(form_errors(rules, answers, submitted=submitted)) == refused, answers


@pytest.mark.browser
def test_the_browser_refuses_a_repeats_answers_exactly_as_the_server(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=SCRIPT.read_text())
    refused = page.evaluate(
        """([rules, cases]) => cases.map(([answers, submitted]) =>
            Object.keys(FormLogic.formErrors(rules, answers, submitted).errors).sort())""",
        [repeat_rules(), [[a, s] for a, s, _ in REPEAT_CASES]],
    )
    assert refused == [keys for _, _, keys in REPEAT_CASES]


def open_repeat_survey(db, year=2026):
    """Add an open survey with a yes/no question per site and a skip-logic number per site."""
    definition = SurveyDefinition(year=year, version=1, title="Sites", status="open")
    db.add(definition)
    db.flush()
    repeat = {"repeat": "sites", "section": "Each site"}
    rows = [
        ("employees", "integer", [], "sum", {}),
        ("site_open", "select_one", YES_NO, "none", {**repeat}),
        (
            "energy",
            "decimal",
            [],
            "sum",
            {
                **repeat,
                "relevant": parse("${site_open} = 'yes'"),
                "constraint": parse(". >= 0"),
                "constraint_message": "Energy cannot be negative.",
            },
        ),
    ]
    for position, (key, kind, choices, how, logic) in enumerate(rows):
        db.add(
            SurveyQuestion(
                definition_id=definition.id,
                position=position,
                key=key,
                label=key.replace("_", " ").capitalize(),
                type=kind,
                required=True,
                choices=choices,
                aggregation=how,
                logic=logic,
            )
        )
    return definition


def facility(db, member, name, removed_on=None):
    site = Facility(member_id=member.id, name=name, country="DE", people=10, removed_on=removed_on)
    db.add(site)
    db.flush()
    return site.id


def test_the_api_lists_and_takes_a_repeats_answers_per_facility_and_refuses_by_its_rules(
    collector, db
):
    open_repeat_survey(db)
    member, other = make_member(db), make_member(db)
    a, b = facility(db, member, "Plant A"), facility(db, member, "Plant B")
    facility(db, member, "Closed in 2024", removed_on=date(2024, 6, 30))
    theirs = facility(db, other, "Not yours")
    token = make_account(db, member=member)
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}

    listed = collector.get("/api/v1/surveys/2026/questions", headers=headers)
    assert listed.status_code == 200, listed.get_json()
    assert [(q["key"], q["facility_id"]) for q in listed.get_json()] == [
        ("employees", None),
        (f"site_open@{a}", a),
        (f"energy@{a}", a),
        (f"site_open@{b}", b),
        (f"energy@{b}", b),
    ]
    assert listed.get_json()[2]["section"] == "Each site: Plant A"

    def put(answers, status="submitted"):
        body = {"status": status, "answers": answers}
        return collector.put("/api/v1/surveys/2026", json=body, headers=headers)

    good = {
        "employees": 40,
        f"site_open@{a}": "yes",
        f"energy@{a}": 120.5,
        f"site_open@{b}": "no",
    }
    not_yours = put({**good, f"energy@{theirs}": 5})
    not_applying = put({**good, f"energy@{b}": 3})
    negative = put({**good, f"energy@{a}": -1})
    missing = put({k: v for k, v in good.items() if k != f"energy@{a}"})
    assert {r.status_code for r in (not_yours, not_applying, negative, missing)} == {422}
    assert f"energy@{theirs}" in not_yours.get_json()["errors"]["json"]["answers"]
    assert "does not apply" in json.dumps(not_applying.get_json()["errors"]["json"]["answers"])
    assert not_applying.get_json()["errors"]["json"]["answers"].keys() == {f"energy@{b}"}
    assert "Energy cannot be negative." in json.dumps(negative.get_json())
    assert list(missing.get_json()["errors"]["json"]["answers"]) == [f"energy@{a}"]

    saved = put(good)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["answers"] == good
    rows = db.execute(
        select(
            SurveyAnswer.question_key, SurveyAnswer.facility_id, SurveyAnswer.value_number
        ).order_by(SurveyAnswer.id)
    ).all()
    assert sorted(rows, key=str) == sorted(
        [
            ("employees", None, 40.0),
            ("site_open", a, None),
            ("energy", a, 120.5),
            ("site_open", b, None),
        ],
        key=str,
    )


def test_the_member_form_shows_each_facility_and_saves_what_it_applies_to(collector, db):
    open_repeat_survey(db)
    member = make_member(db)
    user = make_login(db, member=member)
    a, b = facility(db, member, "Plant A"), facility(db, member, "Plant B")
    db.commit()
    sign_in(collector, user)

    page = collector.get("/member/surveys/2026").get_data(as_text=True)
    for key in (f"site_open@{a}", f"energy@{a}", f"site_open@{b}", f"energy@{b}"):
        assert f'name="{key}"' in page
    assert "Each site: Plant A" in page and "Each site: Plant B" in page

    refused = post_form(
        collector,
        "/member/surveys/2026",
        {"action": "submit", "employees": "7", f"site_open@{a}": "yes", f"site_open@{b}": "no"},
    )
    assert refused.status_code == 422
    assert f'href="#q-energy@{a}"' in refused.get_data(as_text=True)

    answer = post_form(
        collector,
        "/member/surveys/2026",
        {
            "action": "submit",
            "employees": "7",
            f"site_open@{a}": "yes",
            f"energy@{a}": "12",
            f"site_open@{b}": "no",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    energy = db.execute(
        select(SurveyAnswer.facility_id, SurveyAnswer.value_number).where(
            SurveyAnswer.question_key == "energy"
        )
    ).all()
    assert energy == [(a, 12.0)]


def seed_response(db, definition, member, status, energy):
    """Add a member's response with one revision answering energy per facility ({id: value})."""
    from outcomes.models import SurveyResponse, SurveyRevision

    response = SurveyResponse(
        member_id=member.id,
        year=definition.year,
        definition_id=definition.id,
        status=status,
        current_revision=1,
        accepted_revision=1 if status == "accepted" else None,
    )
    db.add(response)
    db.flush()
    answers = {f"energy@{site}": value for site, value in energy.items()}
    revision = SurveyRevision(response_id=response.id, number=1, status=status, answers=answers)
    db.add(revision)
    db.flush()
    db.add_all(
        SurveyAnswer(revision_id=revision.id, question_key="energy", value_number=v, facility_id=f)
        for f, v in energy.items()
    )
    db.flush()
    return response.id


def test_review_compares_each_facility_with_its_own_answer_of_the_year_before(db):
    from collector.review import answer_flags

    member = make_member(db)
    a, b = facility(db, member, "Plant A"), facility(db, member, "Plant B")
    seed_response(db, open_repeat_survey(db, 2025), member, "accepted", {a: 10, b: 1000})
    target = seed_response(db, open_repeat_survey(db, 2026), member, "submitted", {a: 100, b: 1000})

    assert answer_flags(db, [target]) == {target: {f"energy@{a}": ["last_year"]}}


def test_review_compares_a_facilitys_answer_with_every_other_facilitys(db):
    from collector.review import answer_flags

    definition = open_repeat_survey(db, 2026)
    db.flush()
    for value in (10, 11, 12, 13, 14, 15):
        member = make_member(db)
        seed_response(db, definition, member, "accepted", {facility(db, member, "Site"): value})
    member = make_member(db)
    far, near = facility(db, member, "Far"), facility(db, member, "Near")
    target = seed_response(db, definition, member, "submitted", {far: 10**6, near: 12})

    assert answer_flags(db, [target]) == {target: {f"energy@{far}": ["peers"]}}


def test_a_repeats_indicator_says_it_totals_each_members_facilities(db):
    from outcomes.catalogue import survey_indicators

    open_repeat_survey(db)
    db.flush()

    rules = {i.survey_question: i.rule for i in survey_indicators(db.connection())}

    assert "each member's answer is its facilities' total" in rules["energy"]
    assert "facilities' total" not in rules["employees"]
