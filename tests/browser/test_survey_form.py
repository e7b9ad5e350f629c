"""A member fills an XLSForm survey in headless Chromium: sections, skip logic, rules, languages."""

from pathlib import Path

import pytest
from sqlalchemy import select

from collector.definitions import create_definition
from collector.xlsform import parse_xlsform
from outcomes.models import Facility, SurveyAnswer, SurveyResponse, SurveyRevision
from tests.browser.test_collector_walk import sign_in
from tests.collector.test_survey_definitions import workbook
from tests.collector.web import PASSWORD, make_login
from tests.conftest import serving
from tests.factories import make_member

pytestmark = pytest.mark.browser
EXAMPLES = Path(__file__).parents[1] / "collector" / "xlsform_examples"

SURVEY = [
    [
        *("type", "name", "label::English (en)", "label::Français (fr)", "relevant"),
        *("constraint", "constraint_message::English (en)", "required", "calculation"),
    ],
    ["begin_group", "sites", "Sites", "Sites", "", "", "", "", ""],
    [
        "select_one yn",
        "has_sites",
        "Do you run sites?",
        "Avez-vous des sites ?",
        "",
        "",
        "",
        "yes",
        "",
    ],
    [
        *("integer", "count", "How many sites?", "Combien ?", "${has_sites} = 'yes'"),
        *(". > 0", "Give at least 1 site.", "yes", ""),
    ],
    ["calculate", "audits", "Audits due", "Audits", "", "", "", "", "${count} * 2"],
    ["text", "audit_plan", "Audit plan", "Plan d'audit", "${audits} > 4", "", "", "", ""],
    ["end_group", "", "", "", "", "", "", "", ""],
    ["begin_group", "people", "People", "Personnes", "", "", "", "", ""],
    ["text", "contact", "Contact person", "Personne de contact", "", "", "", "", ""],
    ["end_group", "", "", "", "", "", "", "", ""],
]
CHOICES = [
    ["list_name", "name", "label::English (en)", "label::Français (fr)"],
    ["yn", "yes", "Yes", "Oui"],
    ["yn", "no", "No", "Non"],
]


def test_a_member_fills_a_survey_through_its_skip_logic_and_rules(browser, settings, db):
    staff = make_login(db, role="staff")
    member = make_login(db)
    report = parse_xlsform(workbook(SURVEY, CHOICES), "form.xlsx")
    definition = create_definition(
        db,
        settings,
        year=2026,
        title="Survey 2026",
        questions=report.questions,
        staff=staff,
        source="test",
    )
    definition.status = "open"
    db.commit()

    with serving("collector", settings) as base:
        page = browser.new_page()
        sign_in(page, base, member.email, PASSWORD)
        page.goto(base + "/member/surveys/2026")

        # Sections, and a question hidden until its relevant holds.
        assert page.locator("fieldset.section legend").all_inner_texts() == ["Sites", "People"]
        assert page.locator("#q-count").is_hidden()
        page.select_option("#q-has_sites", "yes")
        assert page.locator("#q-count").is_visible()
        # A calculation is worked out as the member types.
        page.fill("#q-count", "3")
        assert page.locator("#q-audits").inner_text() == "6"
        assert page.locator("#q-audit_plan").is_visible()

        # Enter in a field saves nothing.
        page.fill("#q-contact", "Ama")
        page.press("#q-contact", "Enter")
        assert "You have not started this survey." in page.content()

        # A broken constraint: the summary lists it, linked, and takes the focus.
        page.fill("#q-count", "0")
        page.click("button[value=submit]")
        summary = page.locator("#error-summary")
        assert summary.is_visible()
        assert page.evaluate("document.activeElement.id") == "error-summary"
        assert "Give at least 1 site." in summary.inner_text()
        assert page.locator("#error-list a").get_attribute("href") == "#q-count"
        assert page.locator("#q-count").get_attribute("aria-invalid") == "true"
        assert page.locator("#q-count").get_attribute("aria-describedby") == "err-count"

        # The language switch shows every label in French.
        page.select_option("#form-language", "Français (fr)")
        assert page.locator("label[for=q-has_sites] .q-label").inner_text() == (
            "Avez-vous des sites ?"
        )

        # Corrected (a hidden answer is not sent), the server accepts the submission.
        page.fill("#q-count", "3")
        assert page.locator("#q-audit_plan").is_visible()
        page.select_option("#q-has_sites", "no")
        assert page.locator("#q-audits").inner_text() == ""
        # The hidden count is not sent, so the plan that hung on its calculation is hidden too.
        assert page.locator("#q-audit_plan").is_hidden()
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()


def open_example(db, settings, staff, name: str, year: int) -> None:
    """Import one of pyxform's example forms and open it for a year."""
    data = (EXAMPLES / name).read_bytes()
    report = parse_xlsform(data, name)
    definition = create_definition(
        db, settings, year=year, title=name, questions=report.questions, staff=staff, source=name
    )
    definition.status = "open"
    db.commit()


def test_a_member_fills_three_of_pyxforms_example_forms_through_their_logic(browser, settings, db):
    staff = make_login(db, role="staff")
    member = make_login(db)
    open_example(db, settings, staff, "xlsform_spec_test.xlsx", 2024)
    open_example(db, settings, staff, "new_cascading_select.xls", 2025)
    open_example(db, settings, staff, "widgets.xls", 2026)

    with serving("collector", settings) as base:
        page = browser.new_page()
        sign_in(page, base, member.email, PASSWORD)

        # Skip logic: "skip to end" hides the rest; a constraint refers to another answer.
        page.goto(base + "/member/surveys/2024")
        page.select_option("#q-skip_to_end", "no")
        page.fill("#q-a_integer", "3")
        page.fill("#q-a_decimal", "5")
        page.click("button[value=submit]")
        assert page.locator("#error-list a").get_attribute("href") == "#q-a_decimal"
        page.select_option("#q-skip_to_end", "yes")
        assert page.locator("#q-my_name").is_hidden()
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()

        # Cascading choice filters: only Texas's counties, then only Cameron's cities.
        page.goto(base + "/member/surveys/2025")
        page.select_option("#q-state", "texas")
        assert page.locator("#q-county option[value=pierce]").get_attribute("hidden") == ""
        page.select_option("#q-county", "cameron")
        page.select_option("#q-city", "harlingen")
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()

        # Constraints with the form's own messages, and defaults filled in.
        page.goto(base + "/member/surveys/2026")
        assert page.locator("#q-my_decimal").input_value() == "18.31"
        assert page.locator("input[name=my_select][value=c]").is_checked()
        assert not page.locator("input[name=my_select][value=b]").is_checked()
        page.check("input[name=my_select][value=d]")
        page.click("button[value=submit]")
        summary = page.locator("#error-summary").inner_text()
        assert "option c and d cannot be selected together" in summary
        assert "only future dates allowed" in summary
        page.uncheck("input[name=my_select][value=d]")
        page.fill("#q-my_date", "2100-01-01")
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()


def field(key: str) -> str:
    """Return the selector of a question's field (a repeat's key holds an @)."""
    return f'[id="q-{key}"]'


def test_a_member_fills_three_example_forms_repeats_once_per_facility(browser, settings, db):
    staff = make_login(db, role="staff")
    owner = make_member(db)
    member = make_login(db, member=owner)
    plant, mine = (
        Facility(member_id=owner.id, name=name, country="GH", people=5)
        for name in ("Plant", "Mine")
    )
    db.add_all([plant, mine])
    db.flush()
    open_example(db, settings, staff, "tutorial.xls", 2024)
    open_example(db, settings, staff, "repeat_date_test.xls", 2025)
    open_example(db, settings, staff, "xlsform_spec_test.xlsx", 2026)
    a, b = mine.id, plant.id  # listed by name: Mine, then Plant

    with serving("collector", settings) as base:
        page = browser.new_page()
        sign_in(page, base, member.email, PASSWORD)

        # A household-member repeat, once per facility, its skip logic reading its own answers.
        page.goto(base + "/member/surveys/2024")
        legends = page.locator("fieldset.section legend").all_inner_texts()
        assert legends == [
            "Household Member or Visitor: Mine",
            "Household Member or Visitor: Plant",
        ]
        page.select_option(field(f"older_than_five@{a}"), "no")
        page.select_option(field(f"older_than_five@{b}"), "yes")
        assert page.locator(field(f"age_in_months@{a}")).is_visible()
        assert page.locator(field(f"age_in_years@{a}")).is_hidden()
        assert page.locator(field(f"age_in_years@{b}")).is_visible()
        page.select_option(field(f"sex@{b}"), "female")
        page.fill(field(f"age_in_years@{b}"), "30")
        assert page.locator(field(f"literate@{b}")).is_visible()
        assert page.locator(field(f"literate@{a}")).is_hidden()
        page.fill(field(f"age_in_months@{a}"), "80")
        page.click("button[value=submit]")
        assert page.locator("#error-list a").get_attribute("href") == f"#q-age_in_months@{a}"
        page.fill(field(f"age_in_months@{a}"), "30")
        page.fill(field(f"name@{a}"), "Kofi")
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()

        # A repeat of two choices per facility.
        page.goto(base + "/member/surveys/2025")
        for key in (f"table_list_3@{a}", f"table_list_4@{b}"):
            options = page.locator(f"{field(key)} option:not([value=''])").first
            page.select_option(field(key), options.get_attribute("value"))
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()

        # The form with everything: its repeat of grouped choices shows each facility's block.
        page.goto(base + "/member/surveys/2026")
        page.select_option("#q-skip_to_end", "yes")
        assert page.locator(field(f"compact-test@{a}")).count() == 1
        assert page.locator(field(f"compact-test@{b}")).count() == 1
        page.click("button[value=submit]")
        page.get_by_text("Survey submitted").wait_for()

    db.rollback()
    stored = db.execute(
        select(SurveyAnswer.question_key, SurveyAnswer.facility_id, SurveyAnswer.value_text)
        .join(SurveyRevision)
        .join(SurveyResponse)
        .where(SurveyResponse.year == 2024, SurveyAnswer.question_key.in_(("name", "sex")))
    ).all()
    assert sorted(stored) == [("name", a, "Kofi"), ("sex", b, "female")]
