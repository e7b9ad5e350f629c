"""XLSForm rules: server and browser evaluate alike; the API refuses what they refuse."""

import json
import math
from pathlib import Path

import pytest

from collector.expressions import (
    ExpressionError,
    calculated,
    evaluate,
    form_errors,
    parse,
    string,
)
from tests.collector.test_survey_definitions import workbook
from tests.collector.test_xlsform_import import api_import
from tests.factories import make_account

SCRIPT = Path(__file__).parents[2] / "services/collector/collector/static/form-logic.js"
VALUES = {"n": 3, "x": 2.5, "t": "abc", "d": "2025-03-01", "many": ["a", "c"], "none": None}
# (expression, expected value)
VECTORS = [
    ("1 + 2 * 3", 7.0),
    ("(1 + 2) * 3", 9.0),
    ("10 div 4", 2.5),
    ("7 mod 3", 1.0),
    ("-7 mod 3", -1.0),
    ("1 div 0", math.inf),
    ("${n} > 2 and ${x} < 3", True),
    ("${n} = 3", True),
    ("${n} = '3'", True),
    ("${t} = 'abc'", True),
    ("${t} != 'abc' or ${n} >= 4", False),
    ("${none} = ''", True),
    ("${none} > 0", False),
    ("${t} > 0", False),
    ("selected(${many}, 'c')", True),
    ("selected(${many}, 'b')", False),
    ("count-selected(${many})", 2.0),
    ("not(${none})", True),
    ("if(${n} > 1, 'big', 'small')", "big"),
    ("coalesce(${none}, 'fallback')", "fallback"),
    ("concat(${t}, '-', ${n})", "abc-3"),
    ("concat(${x}, '')", "2.5"),
    ("string-length(${t})", 3.0),
    ("contains(${t}, 'bc')", True),
    ("starts-with(${t}, 'ab')", True),
    ("ends-with(${t}, 'x')", False),
    ("substr(${t}, 1)", "bc"),
    ("substr(${t}, 0, 2)", "ab"),
    ("number('12.5') + 1", 13.5),
    ("int(-2.7)", -2.0),
    ("round(2.5)", 3.0),
    ("round(-2.5)", -3.0),
    ("round(3.14159, 2)", 3.14),
    ("${d} > '2025-02-28'", True),
    ("${d} - '2025-02-27'", 2.0),
    ("boolean('0')", True),
    ("true() = 1", True),
    ("string(1 = 1)", "true"),
    ("number('abc')", math.nan),
    ("(1 div 0) mod 2", math.nan),
    ("round(2.5, number('x'))", math.nan),
    ("round(1234, -400)", 0.0),
    ("round(3.14159, 400)", 3.14159),
    ("substr('abc', 1 div 0)", ""),
]
FORM = [  # key, required, logic, choices (as stored by the import)
    ("has_sites", True, {}, ()),
    (
        "sites",
        True,
        {
            "relevant": parse("${has_sites} = 'yes'"),
            "constraint": parse(". > 0 and . <= 50"),
            "constraint_message": "Between 1 and 50 sites.",
            "required_message": "Say how many sites you run.",
        },
        (),
    ),
    (
        "kind",
        False,
        {"choice_filter": parse("group = ${has_sites}", columns=True)},
        (
            {"name": "mine", "label": "Mine", "columns": {"group": "yes"}},
            {"name": "office", "label": "Office", "columns": {"group": "no"}},
        ),
    ),
]
CASES = [  # answers, submitted, keys refused
    ({"has_sites": "yes", "sites": 3, "kind": "mine"}, True, []),
    ({"has_sites": "no", "sites": None, "kind": "office"}, True, []),
    ({"has_sites": "no", "sites": 3}, True, ["sites"]),
    ({"has_sites": "yes", "sites": 0}, True, ["sites"]),
    ({"has_sites": "yes", "sites": 51}, False, ["sites"]),
    ({"has_sites": "yes"}, True, ["sites"]),
    ({"has_sites": "yes"}, False, []),
    ({"has_sites": "yes", "sites": 2, "kind": "office"}, True, ["kind"]),
    ({}, True, ["has_sites"]),
]


def plain(value):
    """Return a value JSON can carry both ways (NaN and infinities as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return string(value)  # "NaN", "Infinity", as JavaScript's String() writes them
    return value


def test_expressions_evaluate_as_xlsform_says():
    for text, expected in VECTORS:
        assert plain(evaluate(parse(text), VALUES)) == plain(expected), text


def test_the_form_rules_refuse_the_expected_answers_on_the_server():
    rules = tuple((k, r, logic, tuple(c)) for k, r, logic, c in FORM)
    for answers, submitted, refused in CASES:
        errors = form_errors(rules, answers, submitted=submitted)
        assert sorted(errors) == refused, answers
    assert form_errors(rules, {"has_sites": "yes", "sites": 99}, submitted=True)["sites"] == [
        "Between 1 and 50 sites."
    ]


@pytest.mark.parametrize(
    "text",
    ["pulldata('a', 'b')", "../x > 1", "${a} >", "(" * 40 + "1" + ")" * 40, "x" * 1001, "${}"],
)
def test_unsupported_or_broken_expressions_are_refused_with_a_reason(text):
    with pytest.raises(ExpressionError) as refused:
        parse(text)
    assert str(refused.value)


@pytest.mark.browser
def test_the_browser_evaluates_and_refuses_exactly_as_the_server(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=SCRIPT.read_text())
    trees = [parse(text) for text, _ in VECTORS]
    results = page.evaluate(
        """([trees, values]) => trees.map((t) => {
            const v = FormLogic.evaluate(t, values);
            return (typeof v === "number" && !Number.isFinite(v)) ? String(v) : v;
        })""",
        [trees, VALUES],
    )
    for (text, expected), found in zip(VECTORS, results, strict=True):
        assert found == plain(expected), text
    rules = [list(q) for q in FORM]
    refused = page.evaluate(
        """([rules, cases]) => cases.map(([answers, submitted]) =>
            Object.keys(FormLogic.formErrors(rules, answers, submitted).errors).sort())""",
        [rules, [[a, s] for a, s, _ in CASES]],
    )
    assert refused == [keys for _, _, keys in CASES]


def test_the_api_refuses_answers_by_the_forms_own_rules(collector, db):
    staff = make_account(db, role="staff")
    member = make_account(db)
    db.commit()
    survey = [
        ["type", "name", "label", "relevant", "constraint", "constraint_message", "required"],
        ["select_one yn", "has_sites", "Do you run sites?", "", "", "", "yes"],
        ["integer", "sites", "How many?", "${has_sites} = 'yes'", ". > 0", "At least 1.", "yes"],
    ]
    choices = [["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "no", "No"]]
    created = api_import(collector, staff, workbook(survey, choices))
    assert created.status_code == 201, created.get_json()
    collector.post(
        f"/api/v1/survey-definitions/{created.get_json()['id']}/status",
        json={"status": "open"},
        headers={"Authorization": f"Bearer {staff}"},
    )
    headers = {"Authorization": f"Bearer {member}"}

    def put(answers, status="submitted"):
        body = {"status": status, "answers": answers}
        return collector.put("/api/v1/surveys/2026", json=body, headers=headers)

    not_relevant = put({"has_sites": "no", "sites": 4})
    broken = put({"has_sites": "yes", "sites": 0})
    missing = put({"has_sites": "yes"})
    fine = put({"has_sites": "no"})

    assert not_relevant.status_code == broken.status_code == missing.status_code == 422
    assert "does not apply" in json.dumps(not_relevant.get_json())
    assert "At least 1." in json.dumps(broken.get_json())
    assert "sites" in missing.get_json()["errors"]["json"]["answers"]
    assert fine.status_code == 200, fine.get_json()


def test_the_demo_surveys_open_year_has_sections_skip_logic_two_languages_and_keeps_them(db):
    from sqlalchemy import select

    from outcomes.catalogue import survey_indicators
    from outcomes.demo import SURVEY_YEARS, load_demo
    from outcomes.models import SurveyDefinition, SurveyQuestion, SurveyResponse, SurveyRevision

    load_demo(db)
    db.commit()
    year = SURVEY_YEARS[-1]
    assert year == 2025
    questions = list(
        db.scalars(
            select(SurveyQuestion)
            .join(SurveyDefinition)
            .where(SurveyDefinition.year == year)
            .order_by(SurveyQuestion.position)
        )
    )
    assert len({q.logic["section"] for q in questions}) == 3
    assert all(set(q.logic["labels"]) == {"English (en)", "Français (fr)"} for q in questions)
    rules = tuple((q.key, q.required, q.logic, tuple(q.choices)) for q in questions if q.logic)
    answers = db.scalars(
        select(SurveyRevision.answers).join(SurveyResponse).where(SurveyResponse.year == year)
    ).all()
    assert answers
    assert all(form_errors(rules, a, submitted=True) == {} for a in answers)
    rule = {i.survey_question: i.rule for i in survey_indicators(db.connection())}["employees"]
    assert "The label is published in English (en)" in rule
    assert "(also: Français (fr))" in rule
    assert form_errors(
        rules, {**answers[0], "human_rights_policy": False, "policy_url": "x"}, submitted=True
    )["policy_url"]


CALCULATED = [  # key, required, logic, choices: a chain, one read before it is computed, text
    ("share", False, {"calculate": parse("round(${women} div ${total} * 100, 1)")}, ()),
    ("women", False, {}, ()),
    ("men", False, {}, ()),
    ("total", False, {"calculate": parse("${women} + ${men}")}, ()),
    ("site", False, {"calculate": parse("concat('site-', ${total})")}, ()),
    (
        "big",
        False,
        {"relevant": parse("${total} > 100"), "calculate": parse("${total} * 2")},
        (),
    ),
]
CALCULATED_NUMERIC = ["share", "women", "men", "total", "big"]
CALCULATIONS = [  # answers sent, the calculated values stored
    (
        {"women": 30, "men": 90, "share": 99, "big": 1},
        {"share": 25.0, "total": 120.0, "site": "site-120", "big": 240.0},
    ),
    ({"women": 3, "men": 1}, {"share": 75.0, "total": 4.0, "site": "site-4", "big": None}),
    ({"women": 0, "men": 0}, {"share": None, "total": 0.0, "site": "site-0", "big": None}),
    ({}, {"share": None, "total": None, "site": "site-", "big": None}),
]


def test_calculations_are_worked_out_on_the_server_whatever_was_sent():
    rules = tuple((k, r, logic, tuple(c)) for k, r, logic, c in CALCULATED)
    for sent, expected in CALCULATIONS:
        found = calculated(rules, sent, frozenset(CALCULATED_NUMERIC))
        assert {key: found[key] for key in expected} == expected, sent
    # An integer beyond a double's range is infinite, as in the browser: no finite total.
    huge = calculated(rules, {"women": 10**400, "men": 1}, frozenset(CALCULATED_NUMERIC))
    assert huge["total"] is None


@pytest.mark.browser
def test_the_browser_calculates_exactly_as_the_server(browser):
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=SCRIPT.read_text())
    found = page.evaluate(
        """([rules, cases, numeric]) =>
            cases.map((sent) => FormLogic.calculated(rules, sent, numeric))""",
        [[list(q) for q in CALCULATED], [sent for sent, _ in CALCULATIONS], CALCULATED_NUMERIC],
    )
    for (sent, expected), values in zip(CALCULATIONS, found, strict=True):
        assert {key: values[key] for key in expected} == expected, sent


def test_an_imported_calculation_is_stored_and_drives_skip_logic_through_the_api(collector, db):
    staff = make_account(db, role="staff")
    member = make_account(db)
    db.commit()
    survey = [
        ["type", "name", "label", "calculation", "relevant", "aggregation"],
        ["integer", "women", "Women employed", "", "", "sum"],
        ["integer", "men", "Men employed", "", "", "sum"],
        ["calculate", "share", "", "round(${women} div (${women} + ${men}) * 100, 1)", "", "mean"],
        ["calculate", "band", "", "if(${share} >= 40, 'balanced', 'low')", "", "count"],
        ["text", "plan", "Your plan to hire more women", "", "${share} < 40", ""],
    ]
    created = api_import(collector, staff, workbook(survey, []))
    assert created.status_code == 201, created.get_json()
    questions = {q["key"]: q for q in created.get_json()["questions"]}
    assert questions["share"]["type"] == "decimal"
    assert questions["band"]["type"] == "text"
    collector.post(
        f"/api/v1/survey-definitions/{created.get_json()['id']}/status",
        json={"status": "open"},
        headers={"Authorization": f"Bearer {staff}"},
    )
    headers = {"Authorization": f"Bearer {member}"}

    def put(answers):
        body = {"status": "submitted", "answers": answers}
        return collector.put("/api/v1/surveys/2026", json=body, headers=headers)

    balanced = put({"women": 45, "men": 55, "share": "not a number"})
    assert balanced.status_code == 200, balanced.get_json()
    assert balanced.get_json()["answers"]["share"] == 45.0  # what was sent is replaced
    assert balanced.get_json()["answers"]["band"] == "balanced"
    low = put({"women": 1, "men": 9, "plan": ""})
    assert low.status_code == 200, low.get_json()
    assert low.get_json()["answers"]["share"] == 10.0
    not_applying = put({"women": 45, "men": 55, "plan": "More apprentices"})
    assert not_applying.status_code == 422
    assert "plan" in not_applying.get_json()["errors"]["json"]["answers"]
