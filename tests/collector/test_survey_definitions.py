"""Survey definitions: XLSForm import with a report, copy from last year, open and close."""

import io

import openpyxl
from sqlalchemy import select

from outcomes.models import SurveyDefinition, SurveyQuestion
from tests.collector.web import csrf_token, make_login, post_form, sign_in
from tests.factories import make_survey

SURVEY_SHEET = [
    ["type", "name", "label", "hint", "required", "constraint", "relevant", "aggregation", "unit"],
    [
        "integer",
        "employees",
        "Employees",
        "People on the payroll",
        "yes",
        ". >= 0",
        "",
        "sum",
        "people",
    ],
    ["decimal", "women_share", "Share of women", "", "yes", ". >= 0 and . <= 100", "", "average"],
    ["text", "notes", "Notes", "", "", "", "", "mean"],
    ["date", "report_date", "Report date", "", "", "", ""],
    ["select_one yn", "policy", "Has a human-rights policy", "", "", "", ""],
    ["select_multiple sites", "sites", "Site kinds", "", "", "", "", "count"],
    ["integer", "odd", "Odd number", "", "", ". mod 2 = 1", ""],
    ["begin_repeat", "visits", "Visits", "", "", "", ""],
    ["text", "visitor", "Visitor", "", "", "", ""],
    ["end_repeat", "", "", "", "", "", ""],
    ["image", "photo", "Photo", "", "", "", "${policy} = 'yes'"],
]
CHOICES_SHEET = [
    ["list_name", "name", "label"],
    ["yn", "yes", "Yes"],
    ["yn", "no", "No"],
    ["sites", "mine", "Mine"],
    ["sites", "smelter", "Smelter"],
]


def workbook(survey: list[list[object]], choices: list[list[object]] | None = None) -> bytes:
    """Return an XLSForm .xlsx with these survey and choices rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey:
        sheet.append(row)
    if choices:
        extra = book.create_sheet("choices")
        for row in choices:
            extra.append(row)
        for cells in extra.iter_rows():
            for cell in cells:
                if str(cell.value).startswith("="):
                    cell.data_type = "s"  # stored as the text a hostile workbook carries
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsform() -> bytes:
    return workbook(SURVEY_SHEET, CHOICES_SHEET)


def signed_in_staff(collector, db):
    staff = make_login(db, role="staff")
    db.commit()
    sign_in(collector, staff)


def upload(collector, data: bytes, filename: str = "form.xlsx", year: str = "2026"):
    token = csrf_token(collector, "/staff/surveys")
    return collector.post(
        "/staff/surveys/import",
        data={
            "csrf_token": token,
            "year": year,
            "title": "Survey 2026",
            "file": (io.BytesIO(data), filename),
        },
        content_type="multipart/form-data",
    )


def test_an_xlsform_becomes_a_draft_with_typed_questions_and_a_report_of_what_is_left_out(
    collector, db
):
    signed_in_staff(collector, db)

    answer = upload(collector, xlsform())

    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, page
    questions = {q.key: q for q in db.scalars(select(SurveyQuestion))}
    assert set(questions) == {
        "employees",
        "women_share",
        "notes",
        "report_date",
        "policy",
        "sites",
        "odd",
        "visitor",
    }
    assert questions["visitor"].logic == {"repeat": "visits", "section": "Visits"}
    assert questions["employees"].type == "integer"
    assert (questions["employees"].aggregation, questions["employees"].unit) == ("sum", "people")
    assert questions["women_share"].aggregation == "none"  # "average" is not ours: reported
    assert (questions["women_share"].minimum, questions["women_share"].maximum) == (0, 100)
    assert questions["employees"].required and not questions["notes"].required
    assert questions["employees"].help_text == "People on the payroll"
    assert [c["name"] for c in questions["sites"].choices] == ["mine", "smelter"]
    assert (questions["sites"].type, questions["sites"].aggregation) == ("select_many", "count")
    assert questions["notes"].aggregation == "none"  # a text has no mean: reported
    assert questions["odd"].logic["constraint"][0] == "="  # a rule beyond bounds is kept
    assert db.scalar(select(SurveyDefinition.status)) == "draft"
    for left_out in (
        "aggregation &#39;average&#39;",
        "repeat &#39;visits&#39; is answered once for each of the member&#39;s facilities",
        "&#39;photo&#39; of type",
        "a text question cannot aggregate as &#39;mean&#39;",
    ):
        assert left_out in page, left_out


def test_a_workbook_pyxform_cannot_read_is_refused_and_nothing_created(collector, db):
    signed_in_staff(collector, db)

    answer = upload(collector, b"not a workbook at all")
    wrong = upload(collector, xlsform(), filename="form.pdf")

    assert answer.status_code == wrong.status_code == 422
    assert db.scalar(select(SurveyDefinition.id)) is None


def test_an_opened_imported_survey_is_answered_by_members_with_its_choices(collector, db):
    signed_in_staff(collector, db)
    upload(collector, xlsform())
    definition_id = db.scalar(select(SurveyDefinition.id))
    post_form(
        collector,
        f"/staff/surveys/{definition_id}/status",
        {"status": "open"},
        token_from="/staff/surveys",
    )
    post_form(collector, "/logout", {}, token_from="/staff")
    db.rollback()  # end the read so this session may write on SQLite
    member = make_login(db)
    db.commit()
    sign_in(collector, member)

    answer = post_form(
        collector,
        "/member/surveys/2026",
        {"action": "draft", "employees": "10", "sites": ["mine", "smelter"], "policy": "maybe"},
    )

    assert answer.status_code == 422
    assert "Choose one of the choices offered." in answer.get_data(as_text=True)
    fixed = post_form(
        collector,
        "/member/surveys/2026",
        {"action": "draft", "employees": "10", "sites": ["mine", "smelter"]},
    )
    assert fixed.status_code == 302
    assert 'value="smelter" checked' in collector.get("/member/surveys/2026").get_data(as_text=True)


def test_a_year_starts_from_the_previous_years_questions_and_can_be_opened_then_closed(
    collector, db
):
    make_survey(db, year=2025, status="closed")
    signed_in_staff(collector, db)

    copied = post_form(
        collector, "/staff/surveys/copy", {"year": "2026"}, token_from="/staff/surveys"
    )
    missing = post_form(
        collector, "/staff/surveys/copy", {"year": "2030"}, token_from="/staff/surveys"
    )

    assert copied.status_code == 302
    assert missing.status_code == 422
    new = db.scalars(select(SurveyDefinition).where(SurveyDefinition.year == 2026)).one()
    keys = db.scalars(
        select(SurveyQuestion.key).where(SurveyQuestion.definition_id == new.id)
    ).all()
    assert sorted(keys) == ["employees", "human_rights_policy", "women_share"]
    path = f"/staff/surveys/{new.id}/status"
    assert (
        post_form(collector, path, {"status": "open"}, token_from="/staff/surveys").status_code
        == 302
    )
    assert (
        post_form(collector, path, {"status": "open"}, token_from="/staff/surveys").status_code
        == 409
    )
    assert (
        post_form(collector, path, {"status": "closed"}, token_from="/staff/surveys").status_code
        == 302
    )
