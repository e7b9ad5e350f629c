"""Staff download survey responses wide: a row per response, a column per question."""

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import text, update

from collector.expressions import parse
from outcomes.db import get_engine
from outcomes.models import Facility, SurveyDefinition, SurveyQuestion, SurveyResponse
from tests.collector.web import make_login, sign_in
from tests.factories import make_account, make_member, make_survey

METADATA = ["_response_id", "_member_id", "_member", "_year", "_status", "_revision"]
CHOICES = [{"name": "wind", "label": "Wind power"}, {"name": "solar", "label": "=Solar"}]
FORMULA = '=HYPERLINK("http://evil.example")'


def add_questions(db, definition, *questions) -> None:
    """Add (key, type, choices[, logic]) questions after a definition's existing ones."""
    start = len(db.query(SurveyQuestion).filter_by(definition_id=definition.id).all())
    for position, (key, kind, choices, *logic) in enumerate(questions, start=start):
        db.add(
            SurveyQuestion(
                definition_id=definition.id,
                position=position,
                key=key,
                label=key,
                type=kind,
                choices=choices,
                aggregation="sum" if kind == "decimal" and logic else "none",
                logic=logic[0] if logic else {},
            )
        )
    db.flush()


YES_NO = [{"name": "yes", "label": "Yes"}, {"name": "no", "label": "No"}]
SITES = {"repeat": "sites", "section": "Each site"}
# The questions of make_repeat_survey's repeat, in form order, with their types.
REPEAT_KINDS = {"site_open": "select_one", "site_energy": "decimal", "site_note": "text"}


def make_repeat_survey(db):
    """Add the 2025 survey with a group ("Policies") and a per-facility repeat with skip logic."""
    definition = make_survey(db)
    add_questions(
        db,
        definition,
        ("policy_note", "text", [], {"section": "Policies"}),
        ("site_open", "select_one", YES_NO, SITES),
        ("site_energy", "decimal", [], {**SITES, "relevant": parse("${site_open} = 'yes'")}),
        ("site_note", "text", [], SITES),
        ("closing_note", "text", []),
    )
    return definition


def add_site(db, member, name: str) -> int:
    site = Facility(member_id=member.id, name=name, country="DE", people=10)
    db.add(site)
    db.flush()
    return site.id


@pytest.fixture
def one_site(db):
    """The repeat survey and a member with one site: its id, the member's token, staff headers."""
    make_repeat_survey(db)
    member = make_member(db)
    site = add_site(db, member, "Plant A")
    token = make_account(db, member=member)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    return site, token, staff


def make_wide_survey(db):
    """Add the 2025 survey with every kind of question."""
    definition = make_survey(db)
    add_questions(
        db,
        definition,
        ("policy_note", "text", []),
        ("energy", "select_one", CHOICES),
        ("sources", "select_many", CHOICES),
    )
    return definition


def put(collector, token, answers, status="submitted"):
    body = {"status": status, "answers": answers}
    response = collector.put(
        "/api/v1/surveys/2025", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.json


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def as_exported(value, kind: str, labels: bool) -> str:
    """Return how the wide CSV shows an answer the API returns."""
    if value is None or value == []:
        return ""
    if kind == "boolean":
        return ("yes" if value else "no") if labels else str(int(value))
    names = {c["name"]: c["label"] for c in (*CHOICES, *YES_NO)}
    if kind == "select_one":
        return names[value] if labels else value
    if kind == "select_many":
        return ";".join(names[v] if labels else v for v in value)
    return str(value)


def test_the_wide_csv_holds_each_members_answers_as_the_api_returns_them(collector, db):
    make_wide_survey(db)
    first, second = make_member(db, name=FORMULA), make_member(db)
    tokens = {first.id: make_account(db, member=first), second.id: make_account(db, member=second)}
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(
        collector,
        tokens[first.id],
        {
            "employees": 120,
            "women_share": 31.5,
            "human_rights_policy": True,
            "policy_note": "-5 is fine",
            "energy": "solar",
            "sources": ["wind", "solar"],
        },
    )
    put(
        collector,
        tokens[second.id],
        {"employees": 7, "women_share": 50, "sources": ["solar"]},
        status="draft",
    )

    kinds = {
        "employees": "integer",
        "women_share": "decimal",
        "human_rights_policy": "boolean",
        "policy_note": "text",
        "energy": "select_one",
        "sources": "select_many",
    }
    for values in ("codes", "labels"):
        answer = collector.get(
            f"/api/v1/exports/responses.csv?year=2025&revisions=all&values={values}", headers=staff
        )
        rows = rows_of(answer)
        assert list(rows[0]) == [*METADATA, "_submitted_at", *kinds]
        assert len(rows) == 2
        for row in rows:
            api = collector.get(
                "/api/v1/surveys/2025",
                headers={"Authorization": f"Bearer {tokens[int(row['_member_id'])]}"},
            ).json
            assert (row["_year"], row["_status"], row["_revision"]) == (
                "2025",
                api["status"],
                str(api["revision"]),
            )
            for key, kind in kinds.items():
                expected = as_exported(api["answers"].get(key), kind, values == "labels")
                if kind == "decimal" and expected:
                    assert float(row[key]) == float(expected)
                else:
                    # Text a spreadsheet would run as a formula is exported as text.
                    defused = "'" + expected if expected[:1] in ("=", "-") else expected
                    assert row[key] == defused, (key, values)
    assert {row["_member"] for row in rows} == {"'" + FORMULA, second.name}


def test_accepted_current_revisions_only_by_default(collector, db):
    make_wide_survey(db)
    member = make_member(db)
    token, other = make_account(db, member=member), make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(collector, token, {"employees": 120, "women_share": 1})
    put(collector, token, {"employees": 130, "women_share": 2})
    put(collector, other, {"employees": 7, "women_share": 3})  # never accepted
    db.execute(
        update(SurveyResponse)
        .where(SurveyResponse.member_id == member.id)
        .values(status="accepted", accepted_revision=SurveyResponse.current_revision)
    )
    db.commit()

    rows = rows_of(collector.get("/api/v1/exports/responses.csv", headers=staff))

    assert [(r["_member_id"], r["_status"], r["_revision"], r["employees"]) for r in rows] == [
        (str(member.id), "accepted", "2", "130")
    ]
    every = rows_of(collector.get("/api/v1/exports/responses.csv?revisions=all", headers=staff))
    assert [r["employees"] for r in every if r["_member_id"] == str(member.id)] == ["120", "130"]


def test_columns_are_the_union_of_the_years_definitions_newest_order_first(collector, db):
    make_wide_survey(db)
    older = SurveyDefinition(year=2024, version=1, title="Survey 2024", status="closed")
    db.add(older)
    db.flush()
    add_questions(db, older, ("sites", "integer", []), ("employees", "integer", []))
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()

    header = rows_of_header(collector.get("/api/v1/exports/responses.csv", headers=staff))
    only_2024 = rows_of_header(
        collector.get("/api/v1/exports/responses.csv?year=2024", headers=staff)
    )

    assert header[7:] == [
        "employees",
        "women_share",
        "human_rights_policy",
        "policy_note",
        "energy",
        "sources",
        "sites",
    ]
    assert only_2024[7:] == ["sites", "employees"]


def rows_of_header(response) -> list[str]:
    assert response.status_code == 200
    return next(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("year=2031", "year", "There is no survey definition for 2031."),
        ("year=twenty", "year", "Not a valid integer."),
        ("values=names", "values", "Must be one of: codes, labels."),
        ("format=csv", "format", "Unknown field."),
        ("part=sites", "part", "Must be one of: responses, repeats."),
    ],
)
def test_bad_parameters_are_a_422_naming_the_field(collector, db, query, field, message):
    make_wide_survey(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()

    for extension in ("csv", "xlsx"):
        answer = collector.get(f"/api/v1/exports/responses.{extension}?{query}", headers=staff)

        assert answer.status_code == 422
        assert answer.json["errors"]["query"][field] == [message]


def test_the_workbook_holds_the_same_cells_with_numbers_as_numbers(collector, db):
    make_wide_survey(db)
    token = make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(
        collector,
        token,
        {"employees": 120, "women_share": 31.5, "policy_note": FORMULA, "energy": "wind"},
    )

    book = collector.get(
        "/api/v1/exports/responses.xlsx?revisions=all&values=labels", headers=staff
    )
    csv_rows = rows_of(
        collector.get("/api/v1/exports/responses.csv?revisions=all&values=labels", headers=staff)
    )

    assert book.status_code == 200
    assert book.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(book.get_data()), read_only=True).active
    header, *cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header == list(csv_rows[0])
    row = dict(zip(header, cells[0]))
    assert (row["employees"], row["women_share"], row["energy"]) == (120, 31.5, "Wind power")
    assert row["policy_note"] == "'" + FORMULA  # a formula stays text
    assert row["human_rights_policy"] is None


def test_a_client_leaving_mid_stream_stops_the_query_and_frees_the_connection(
    collector, db, backend
):
    make_wide_survey(db)
    token = make_account(db)
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(collector, token, {"employees": 1, "women_share": 1, "policy_note": "x" * 3000})
    # Many revisions, so the export is far larger than one chunk.
    engine = get_engine(backend.settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO survey_revision (response_id, number, status, answers, created_at) "
                "SELECT response_id, number + n, status, answers, created_at FROM survey_revision, "
                + (
                    "generate_series(1, 3000) AS n"
                    if backend.name == "postgres"
                    else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                    "WHERE n < 3000) "
                    "SELECT n FROM s)"
                )
            )
        )
        conn.execute(
            text(
                "INSERT INTO survey_answer (revision_id, question_key, value_number, value_text) "
                "SELECT v.id, a.question_key, a.value_number, a.value_text FROM survey_revision v, "
                "survey_answer a WHERE v.number > 1"
            )
        )

    answer = collector.get(
        "/api/v1/exports/responses.csv?revisions=all", headers=staff, buffered=False
    )
    chunks = iter(answer.response)
    assert next(chunks).startswith(b"_response_id,")
    next(chunks)
    answer.close()  # what the server does when the client goes away

    # The connection went back to the pool, its transaction ended.
    assert engine.pool.checkedout() == 0
    if backend.name == "postgres":
        with engine.connect() as conn:
            busy = conn.execute(
                text(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state <> 'idle' AND query LIKE 'COPY (SELECT survey_response.id AS _resp%'"
                    "AND pid <> pg_backend_pid()"
                )
            ).all()
        assert busy == []


def test_staff_download_the_same_file_from_the_exports_page(collector, db):
    make_wide_survey(db)
    token = make_account(db)
    staff = make_login(db, role="staff")
    member = make_login(db)
    bearer = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    put(collector, token, {"employees": 120, "women_share": 31.5, "energy": "wind"})
    sign_in(collector, member)
    assert collector.get("/staff/exports").status_code == 403
    sign_in(collector, staff)

    form = collector.get("/staff/exports")
    page = collector.get("/staff/exports?download=1&year=2025&revisions=all&values=labels")
    from_page = rows_of(page)  # read before the next request: a stream holds its context
    missing = collector.get("/staff/exports?download=1&year=2031")

    assert form.status_code == 200 and '<option value="2025"' in form.get_data(as_text=True)
    assert '<option value="repeats"' in form.get_data(as_text=True)
    api = collector.get(
        "/api/v1/exports/responses.csv?year=2025&revisions=all&values=labels", headers=bearer
    )
    assert from_page == rows_of(api)
    assert page.headers["Content-Disposition"].endswith('"survey-responses-2025-all.csv"')
    assert missing.status_code == 422
    assert "There is no survey definition for 2031." in missing.get_data(as_text=True)


def test_a_repeat_is_a_second_file_of_a_row_per_response_and_facility(collector, db):
    make_repeat_survey(db)
    first, second = make_member(db), make_member(db)
    a, b = add_site(db, first, "Plant A"), add_site(db, first, FORMULA)
    c = add_site(db, second, "Mill C")
    tokens = {first.id: make_account(db, member=first), second.id: make_account(db, member=second)}
    staff = {"Authorization": f"Bearer {make_account(db, role='staff')}"}
    db.commit()
    sent = [
        (first, {"employees": 120, "women_share": 31.5, "policy_note": "ok",
                 f"site_open@{a}": "yes", f"site_energy@{a}": 12.5,
                 f"site_note@{a}": "-2 on last year", f"site_open@{b}": "no",
                 "closing_note": "done"}, "submitted"),
        (first, {"employees": 1, "women_share": 2, f"site_open@{b}": "yes"}, "submitted"),
        (second, {"employees": 7, "women_share": 50, f"site_open@{c}": "yes",
                  f"site_energy@{c}": 3}, "draft"),
    ]  # fmt: skip
    held = {}  # (response, revision): the answers the API holds and returns
    for member, answers, status in sent:
        saved = collector.put(
            "/api/v1/surveys/2025",
            json={"status": status, "answers": answers},
            headers={"Authorization": f"Bearer {tokens[member.id]}"},
        )
        assert saved.status_code == 200, saved.json
        db.rollback()  # see the collector's writes
        response_id = db.query(SurveyResponse).filter_by(member_id=member.id).one().id
        held[(str(response_id), str(saved.json["revision"]))] = saved.json["answers"]
    names = {a: "Plant A", b: "'" + FORMULA, c: "Mill C"}  # a formula is exported as text

    main = rows_of(collector.get("/api/v1/exports/responses.csv?revisions=all", headers=staff))
    assert list(main[0])[7:] == [
        "employees",
        "women_share",
        "human_rights_policy",
        "policy_note",
        "closing_note",
    ]  # a repeat's questions are not columns of the main file
    for values in ("codes", "labels"):
        labels = values == "labels"
        answer = collector.get(
            f"/api/v1/exports/responses.csv?year=2025&revisions=all&values={values}&part=repeats",
            headers=staff,
        )
        rows = rows_of(answer)

        assert answer.headers["Content-Disposition"].endswith(
            '"survey-responses-2025-all-repeats.csv"'
        )
        metadata = ["_response_id", "_revision", "_facility_id", "_facility"]
        assert list(rows[0]) == [*metadata, *REPEAT_KINDS]
        # Keyed like the main file's rows; a row for each facility a revision answers for.
        assert {(row["_response_id"], row["_revision"]) for row in rows} == set(held)
        assert {(row["_response_id"], row["_revision"]) for row in main} == set(held)
        assert len(rows) == 4  # A and B in revision 1, B in revision 2, C in the draft
        for row in rows:
            answers, site = held[(row["_response_id"], row["_revision"])], int(row["_facility_id"])
            assert row["_facility"] == names[site]
            for key, kind in REPEAT_KINDS.items():
                expected = as_exported(answers.get(f"{key}@{site}"), kind, labels)
                if kind == "decimal" and expected:
                    assert float(row[key]) == float(expected)
                else:
                    defused = "'" + expected if expected[:1] in ("=", "-") else expected
                    assert row[key] == defused, (key, values)
    # In the main file's order, then the member's facilities by name as the form shows them.
    assert [(row["_revision"], row["_facility_id"]) for row in rows] == [
        ("1", str(b)),
        ("1", str(a)),
        ("2", str(b)),
        ("1", str(c)),
    ]
    assert (rows[1]["site_open"], rows[1]["site_note"]) == ("Yes", "'-2 on last year")


def test_the_workbook_holds_the_responses_and_the_repeats_sheets(collector, one_site):
    site, token, staff = one_site
    put(
        collector,
        token,
        {"employees": 3, "women_share": 4, f"site_open@{site}": "yes", f"site_energy@{site}": 9},
    )

    # Each read before the next request: a stream holds its context.
    book = collector.get("/api/v1/exports/responses.xlsx?revisions=all", headers=staff).get_data()
    only = collector.get(
        "/api/v1/exports/responses.xlsx?revisions=all&part=repeats", headers=staff
    ).get_data()
    csvs = {
        part: rows_of(
            collector.get(f"/api/v1/exports/responses.csv?revisions=all&part={part}", headers=staff)
        )
        for part in ("responses", "repeats")
    }

    sheets = load_workbook(io.BytesIO(book), read_only=True)
    assert sheets.sheetnames == ["responses", "repeats"]
    for part, rows in csvs.items():
        header, *cells = [list(row) for row in sheets[part].iter_rows(values_only=True)]
        assert header == list(rows[0]) and len(cells) == len(rows) == 1
    header, *cells = [list(row) for row in sheets["repeats"].iter_rows(values_only=True)]
    row = dict(zip(header, cells[0]))  # a read-only sheet leaves out a row's trailing blanks
    assert {key: row.get(key) for key in header} == {
        "_response_id": int(csvs["repeats"][0]["_response_id"]),
        "_revision": 1,
        "_facility_id": site,
        "_facility": "Plant A",
        "site_open": "yes",
        "site_energy": 9,
        "site_note": None,
    }
    assert load_workbook(io.BytesIO(only), read_only=True).sheetnames == ["repeats"]


def number(text: str) -> float | None:
    """Read a number cell (PostgreSQL writes 5, SQLite 5.0); an empty cell is None."""
    return float(text) if text else None


def test_a_key_asked_outside_a_repeat_one_year_and_inside_it_the_next_is_in_both_files(
    collector, db, one_site
):
    site, token, staff = one_site
    older = make_survey(db, year=2024)
    add_questions(db, older, ("site_energy", "decimal", []))
    db.commit()
    for year, answers in (
        (2024, {"employees": 3, "women_share": 40, "site_energy": 5}),
        (2025, {"employees": 4, "women_share": 41, f"site_open@{site}": "yes",
                f"site_energy@{site}": 7}),
    ):  # fmt: skip
        saved = collector.put(
            f"/api/v1/surveys/{year}",
            json={"status": "submitted", "answers": answers},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert saved.status_code == 200, saved.json

    base = "/api/v1/exports/responses.csv?revisions=all"
    main = rows_of(collector.get(base, headers=staff))
    repeats = rows_of(collector.get(base + "&part=repeats", headers=staff))

    assert {row["_year"]: number(row["site_energy"]) for row in main} == {"2024": 5, "2025": None}
    assert [(row["_facility_id"], number(row["site_energy"])) for row in repeats] == [
        (str(site), 7)
    ]


def test_a_response_answering_only_a_repeat_still_has_its_row_in_the_responses_file(
    collector, one_site
):
    site, token, staff = one_site
    put(collector, token, {f"site_open@{site}": "no"}, status="draft")

    base = "/api/v1/exports/responses.csv?revisions=all"
    main = rows_of(collector.get(base, headers=staff))
    repeats = rows_of(collector.get(base + "&part=repeats", headers=staff))

    assert [(row["_status"], row["employees"]) for row in main] == [("draft", "")]
    assert [(row["_response_id"], row["site_open"]) for row in repeats] == [
        (main[0]["_response_id"], "no")
    ]
