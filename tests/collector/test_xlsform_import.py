"""XLSForm import: pyxform's own example forms and hostile workbooks, by page and by staff API."""

import io
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collector.expressions import parse
from outcomes.models import SurveyDefinition, SurveyQuestion
from tests.collector.test_survey_definitions import signed_in_staff, upload, workbook
from tests.factories import make_account

EXAMPLES = Path(__file__).parent / "xlsform_examples"
FORMS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".xls", ".xlsx", ".xlsm", ".csv"))
# The example forms with a repeat: each now imports, its repeat asked once per facility.
REPEATS = {
    "attribute_columns_test.xlsx": "repeat_test",
    "repeat_date_test.xls": "repeat_test",
    "tutorial.xls": "member",
    "warnings.xls": "repeat_test",
    "xlsform_spec_test.xlsx": "repeat_test",
}
# A loop (one pass per choice) is still not rendered: these forms have nothing else to import.
LOOPS = ("another_loop.xls", "loop.csv", "loop.xls", "simple_loop.csv")


def api_import(collector, token: str, data: bytes, filename: str = "form.xlsx"):
    return collector.post(
        "/api/v1/survey-definitions/import",
        data={"year": "2026", "title": "Imported", "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {token}"},
    )


def definitions(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(SurveyDefinition))


def test_every_pyxform_example_form_is_imported_or_refused_with_its_reasons(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    outcomes = {}
    for form in FORMS:
        answer = api_import(collector, token, form.read_bytes(), form.name)
        body = answer.get_json()
        assert answer.status_code in (201, 422), (form.name, answer.status_code, body)
        if answer.status_code == 422:
            assert body["message"], form.name
            report = body.get("errors", {}).get("report")
            if "report" in body["message"]:  # a refusal that points at the report has one
                assert report, form.name
        outcomes[form.name] = answer.status_code
        if form.name in REPEATS:
            assert answer.status_code == 201, (form.name, body)
            repeated = {q["logic"].get("repeat") for q in body["questions"]} - {None}
            assert repeated == {REPEATS[form.name]}, form.name
            assert any("once for each of the member's facilities" in w for w in body["warnings"])
        if form.name in LOOPS:
            assert answer.status_code == 422, form.name
            assert any("loops are not rendered" in line for line in body["errors"]["report"])
    imported = [name for name, status in outcomes.items() if status == 201]
    assert len(FORMS) == 70
    assert len(imported) >= 26, outcomes
    assert definitions(db) == len(imported)


def test_two_questions_of_the_same_name_in_two_groups_are_refused_naming_both(collector, db):
    signed_in_staff(collector, db)
    survey = [
        ["type", "name", "label"],
        ["begin_group", "site_a", "Site A"],
        ["integer", "staff", "Staff"],
        ["end_group", "", ""],
        ["begin_group", "site_b", "Site B"],
        ["integer", "staff", "Staff"],
        ["end_group", "", ""],
        ["text", "x" * 61, "Long"],
    ]

    answer = upload(collector, workbook(survey))

    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "&#39;site_a/staff&#39; and &#39;site_b/staff&#39; are both named" in page
    assert "the name is 61 characters" in page
    assert definitions(db) == 0


def test_formula_like_choices_unknown_functions_and_cycles_are_refused(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    survey = [
        ["type", "name", "label", "relevant", "constraint"],
        ["select_one links", "link", "Link", "", ""],
        ["integer", "a", "A", "${b} > 1", ""],
        ["integer", "b", "B", "${a} > 1", ""],
        ["integer", "c", "C", "", "pulldata('x', 'y') > 1"],
        ["integer", "d", "D", "", "../a > 1"],
    ]
    choices = [["list_name", "name", "label"], ["links", "=HYPERLINK(1)", "=cmd()"]]

    answer = api_import(collector, token, workbook(survey, choices))

    body = answer.get_json()
    assert answer.status_code == 422, body
    report = "\n".join(body["errors"]["report"])
    assert "the choice '=HYPERLINK(1)'" in report
    assert "pulldata() is not supported" in report
    assert "in a circle: a -> b -> a" in report
    assert "refer to other questions as ${name}" in report
    assert definitions(db) == 0


@pytest.mark.parametrize(
    "case",
    [
        "not a workbook",
        "zip bomb",
        "20,000 rows",
        "a repeat nested five deep",
        "too many questions",
    ],
)
def test_hostile_workbooks_get_a_422_stating_the_limit_and_write_nothing(collector, db, case):
    token = make_account(db, role="staff")
    db.commit()
    if case == "not a workbook":
        data, expected = b"PK\x03\x04 but not really", "not an .xlsx workbook"
    elif case == "zip bomb":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 30_000_000)
        data, expected = out.getvalue(), "unpack to at most 20,000,000"
    elif case == "20,000 rows":
        rows = [["type", "name", "label"]] + [["text", f"q{i}", "Q"] for i in range(20_000)]
        data, expected = workbook(rows), "at most 5,000 rows in a sheet"
    elif case == "a repeat nested five deep":
        rows = [["type", "name", "label"]]
        rows += [["begin_repeat", f"r{i}", "R"] for i in range(5)]
        rows += [["integer", "n", "N"]] + [["end_repeat", "", ""]] * 5
        data, expected = workbook(rows), "at most 4 levels are allowed"
    else:
        rows = [["type", "name", "label"]] + [["text", f"q{i}", "Q"] for i in range(501)]
        data, expected = workbook(rows), "a survey may have at most 500"

    answer = api_import(collector, token, data)

    body = answer.get_json()
    assert answer.status_code == 422, body
    assert expected in body["message"] + "\n".join(body.get("errors", {}).get("report", []))
    assert definitions(db) == 0


def test_the_staff_api_imports_an_xlsform_with_its_report(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    survey = [
        ["type", "name", "label::English (en)", "label::Français (fr)"],
        ["integer", "staff", "Staff", "Personnel"],
        ["image", "photo", "Photo", "Photo"],
    ]

    answer = api_import(collector, token, workbook(survey))

    body = answer.get_json()
    assert answer.status_code == 201, body
    assert [q["key"] for q in body["questions"]] == ["staff"]
    assert body["questions"][0]["logic"]["labels"]["Français (fr)"] == "Personnel"
    assert any("of type 'photo'" in line for line in body["unsupported"]), body["unsupported"]
    db.rollback()
    assert db.scalar(select(SurveyQuestion.label)) == "Staff"


SITES = [
    ["type", "name", "label", "relevant", "constraint", "repeat_count", "aggregation"],
    ["select_one yn", "operating", "Operating?", "", "", "", ""],
    ["begin_repeat", "sites", "Each site", "${operating} = 'yes'", "", "3", ""],
    ["integer", "staff", "Staff", "", "", "", "sum"],
    ["begin_group", "power", "Energy", "", "", "", ""],
    ["decimal", "energy", "Energy used", "${staff} > 0", "", "", "mean"],
    ["end_group", "", "", "", "", "", ""],
    ["end_repeat", "", "", "", "", "", ""],
    ["integer", "total", "Total staff", "", "", "", "sum"],
]
YES_NO = [["list_name", "name", "label"], ["yn", "yes", "Yes"], ["yn", "no", "No"]]


def test_a_repeat_is_imported_per_facility_with_its_section_relevance_and_a_report(collector, db):
    token = make_account(db, role="staff")
    db.commit()

    answer = api_import(collector, token, workbook(SITES, YES_NO))

    body = answer.get_json()
    assert answer.status_code == 201, body
    found = {q["key"]: q for q in body["questions"]}
    assert list(found) == ["operating", "staff", "energy", "total"]  # no pyxform sites_count
    operating = parse("${operating} = 'yes'")
    assert found["staff"]["logic"] == {
        "repeat": "sites",
        "section": "Each site",
        "relevant": operating,
    }
    assert found["energy"]["logic"] == {
        "repeat": "sites",
        "section": "Energy",  # a group inside the repeat titles its questions, as groups do
        "relevant": ["and", parse("${staff} > 0"), operating],
    }
    assert "repeat" not in found["total"]["logic"]
    assert (found["staff"]["aggregation"], found["energy"]["aggregation"]) == ("sum", "none")
    assert "repeat 'sites' is answered once for each of the member's facilities" in "\n".join(
        body["warnings"]
    )
    unsupported = "\n".join(body["unsupported"])
    assert "repeat 'sites': repeat_count '3' is not applied" in unsupported
    assert (
        "'sites/power/energy': a question in repeat 'sites' is published as each member's total "
        "over its facilities, so it cannot aggregate as 'mean'"
    ) in unsupported
    db.rollback()
    stored = db.scalars(select(SurveyQuestion).where(SurveyQuestion.key == "energy")).one()
    assert (stored.aggregation, stored.logic["repeat"]) == ("none", "sites")


def test_a_repeat_inside_a_repeat_is_left_out_saying_where_to_move_its_questions(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    survey = [
        ["type", "name", "label", "repeat_count"],
        ["begin_repeat", "sites", "Each site", ""],
        ["integer", "staff", "Staff", ""],
        ["begin_repeat", "machines", "Each machine", "4"],
        ["decimal", "hours", "Hours run", ""],
        ["end_repeat", "", "", ""],
        ["end_repeat", "", "", ""],
    ]

    answer = api_import(collector, token, workbook(survey))

    body = answer.get_json()
    assert answer.status_code == 201, body
    assert [q["key"] for q in body["questions"]] == ["staff"]
    assert (
        "repeat 'sites/machines' (with hours) sits inside repeat 'sites': a repeat is answered "
        "once per facility and cannot hold another repeat, so its questions are left out (move "
        "them into 'sites' or out of it)"
    ) in body["unsupported"]


def test_a_reference_into_a_repeat_from_outside_it_or_from_another_repeat_is_refused(collector, db):
    token = make_account(db, role="staff")
    db.commit()
    survey = [
        ["type", "name", "label", "relevant", "constraint"],
        ["begin_repeat", "sites", "Each site", "", ""],
        ["integer", "staff", "Staff", "", ""],
        ["end_repeat", "", "", "", ""],
        ["integer", "total", "Total staff", "${staff} > 0", ""],
        ["begin_repeat", "vehicles", "Each vehicle", "", ""],
        ["decimal", "km", "Distance", "", ". < ${staff}"],
        ["end_repeat", "", "", "", ""],
    ]

    answer = api_import(collector, token, workbook(survey))

    body = answer.get_json()
    assert answer.status_code == 422, body
    report = "\n".join(body["errors"]["report"])
    assert (
        "'total': relevant '${staff} > 0' refers to 'sites/staff' in repeat 'sites', which is "
        "answered once for each facility: outside the repeat it has no single value (move "
        "'total' into repeat 'sites', or refer to a question outside it)"
    ) in report
    assert (
        "'vehicles/km' (in repeat 'vehicles'): constraint '. < ${staff}' refers to 'sites/staff' "
        "in repeat 'sites'"
    ) in report
    assert definitions(db) == 0
