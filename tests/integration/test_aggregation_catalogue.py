"""Every seed indicator on a hand-checked fixture, on SQLite and on PostgreSQL."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from outcomes.models import (
    Application,
    AuditingFirm,
    ExternalCertification,
    Facility,
    IndicatorValue,
    Meeting,
    Snapshot,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
    Training,
    auditing_firm_country,
    certificate_external,
    certificate_facility,
)
from tests.factories import make_certificate, make_member, make_survey

AS_OF = date(2026, 6, 30)


def build(settings, threshold: int = 1) -> int:
    """Publish a snapshot of everything (threshold 1 shows every value unless a test wants it).

    Exact values: these tests check the counting rules, so member-reported cells are not
    perturbed here (test_aggregation_disclosure and test_disclosure_attack check the noise).
    """
    engine = get_engine(settings.database_url)
    result = build_snapshot(
        engine, trigger="test", as_of=AS_OF, force=True, threshold=threshold, perturb=False
    )
    assert result.snapshot_id is not None
    return result.snapshot_id


def published(db, snapshot_id: int, code: str) -> dict[tuple[str, str, str], IndicatorValue]:
    rows = db.scalars(
        select(IndicatorValue).where(
            IndicatorValue.snapshot_id == snapshot_id, IndicatorValue.indicator == code
        )
    )
    return {(v.period, v.breakdown, v.category): v for v in rows}


def values(db, snapshot_id: int, code: str) -> dict[tuple[str, str, str], float | None]:
    return {key: cell.value for key, cell in published(db, snapshot_id, code).items()}


def make_site(db, member, country: str, people: int, removed_on: date | None = None) -> Facility:
    site = Facility(
        member_id=member.id, name=f"{country} site", country=country, people=people,
        removed_on=removed_on,
    )  # fmt: skip
    db.add(site)
    db.flush()
    return site


def certify(db, member, sites, *, externals=(), **fields):
    """Add a certificate of the member covering the given sites (and leveraging externals)."""
    certificate = make_certificate(db, member=member, **fields)
    db.execute(
        certificate_facility.delete().where(certificate_facility.c.certificate_id == certificate.id)
    )
    db.execute(
        insert(certificate_facility),
        [{"certificate_id": certificate.id, "facility_id": site.id} for site in sites],
    )
    for external in externals:
        db.execute(
            insert(certificate_external).values(
                certificate_id=certificate.id, external_certification_id=external.id
            )
        )
    return certificate


def make_external(db, code: str, valid_from: date) -> ExternalCertification:
    external = ExternalCertification(code=code, name=code, valid_from=valid_from)
    db.add(external)
    db.flush()
    return external


def make_firm(db, name: str, accredited_on: date, countries, ends: date | None = None):
    firm = AuditingFirm(name=name, accredited_on=accredited_on, accreditation_ends_on=ends)
    db.add(firm)
    db.flush()
    db.execute(
        insert(auditing_firm_country), [{"firm_id": firm.id, "country": c} for c in countries]
    )
    return firm


def make_response(db, member, definition, *revisions: dict[str, Any], status: str = "accepted"):
    """Add a member's response with one revision per answers dict; the last is current."""
    response = SurveyResponse(
        member_id=member.id,
        year=definition.year,
        definition_id=definition.id,
        status=status,
        current_revision=len(revisions),
        accepted_revision=len(revisions) if status == "accepted" else None,
    )
    db.add(response)
    db.flush()
    for number, answers in enumerate(revisions, start=1):
        revision = SurveyRevision(response_id=response.id, number=number, status=status, answers={})
        db.add(revision)
        db.flush()
        for key, value in answers.items():
            text = value if isinstance(value, str) else None
            number_value = None if text is not None else float(value)
            db.add(
                SurveyAnswer(
                    revision_id=revision.id,
                    question_key=key,
                    value_number=number_value,
                    value_text=text,
                )
            )
    db.flush()
    return response


def add_question(db, definition, key: str, kind: str, aggregation: str, position: int) -> None:
    db.add(
        SurveyQuestion(
            definition_id=definition.id, position=position, key=key, label=key, type=kind,
            unit="%" if kind == "decimal" else "", aggregation=aggregation, help_text="",
            choices=[],
        )
    )  # fmt: skip
    db.flush()


@pytest.fixture
def certification(db):
    """Three holders, five sites (one removed), PS and CoC certificates, two external schemes."""
    smelter = make_member(db, country="DE")
    roller = make_member(db, country="NO", membership_class="Industrial Users")
    miner = make_member(db, country="CA")
    de1, de2 = make_site(db, smelter, "DE", 100), make_site(db, smelter, "DE", 50)
    no = make_site(db, roller, "NO", 30)
    ca = make_site(db, miner, "CA", 400, removed_on=date(2025, 1, 1))
    br = make_site(db, miner, "BR", 7)
    iso = make_external(db, "ISO14001", date(2015, 1, 1))
    sa8000 = make_external(db, "SA8000", date(2022, 1, 1))  # recognised after c4 was issued
    certify(db, smelter, [de1, de2], issued_on=date(2019, 3, 1), externals=[iso])
    certify(db, smelter, [de1], issued_on=date(2021, 2, 1), kind="provisional")
    certify(db, roller, [no], issued_on=date(2021, 4, 1), expires_on=date(2024, 9, 1))
    certify(db, miner, [ca], issued_on=date(2020, 6, 1), externals=[sa8000])
    certify(db, miner, [br], standard="CoC", issued_on=date(2022, 1, 10))
    db.commit()


def test_certified_countries_are_those_of_present_facilities_under_a_valid_certificate(
    settings, db, certification
):
    got = values(db, build(settings), "certified_countries")

    assert got[("all", "total", "")] == 2  # DE and BR: CA's site was removed, NO's expired
    assert got[("all", "standard", "PS")] == 1 and got[("all", "standard", "CoC")] == 1
    assert got[("all", "country", "DE")] == 2  # two certified sites in Germany
    assert got[("2019", "total", "")] == 1
    assert got[("2021", "total", "")] == 3  # DE, NO, CA
    assert got[("2024", "total", "")] == 3  # NO expired in September; BR came in 2022
    assert got[("2025", "total", "")] == 2


def test_people_in_ps_facilities_count_each_present_certified_site_once(
    settings, db, certification
):
    got = values(db, build(settings), "people_in_ps_facilities")

    assert got[("all", "total", "")] == 150  # DE sites 100 + 50; the first counted once
    assert got[("all", "country", "DE")] == 150
    assert got[("all", "membership_class", "Production & Transformation")] == 150
    assert got[("2019", "total", "")] == 150
    assert got[("2020", "total", "")] == 550  # plus the CA site, not yet removed
    assert got[("2021", "total", "")] == 580  # plus NO
    assert "2018" not in {period for period, _, _ in got}


def test_external_leverage_counts_schemes_recognised_when_the_certificate_was_issued(
    settings, db, certification
):
    got = values(db, build(settings), "ps_external_leverage_pct")

    assert got[("all", "total", "")] == 25.0  # 1 of 4 PS certificates
    assert got[("all", "status", "valid")] == pytest.approx(100 / 3)
    assert got[("all", "external", "ISO14001")] == 25.0
    assert ("all", "external", "SA8000") not in got
    assert (got[("2019", "total", "")], got[("2020", "total", "")]) == (100.0, 50.0)


def test_a_certificate_covering_a_removed_facility_is_reported_not_fatal(
    settings, db, certification
):
    snapshot = db.get(Snapshot, build(settings))

    checks = snapshot.data_quality["checks"]
    assert checks["certificates_covering_removed_facilities"]["count"] == 1
    assert checks["certificates_without_facilities"]["count"] == 0
    assert snapshot.data_quality["timings"]["certified_countries"] >= 0


def test_auditing_firms_and_their_countries_count_firms_accredited_on_the_day(settings, db):
    make_firm(db, "A", date(2018, 1, 1), ["DE", "FR"])
    make_firm(db, "B", date(2019, 6, 1), ["FR", "US"], ends=date(2025, 12, 31))
    make_firm(db, "C", date(2020, 3, 1), ["BR"])
    make_firm(db, "D", date(2027, 1, 1), ["JP"])
    db.commit()
    snapshot_id = build(settings)

    firms = values(db, snapshot_id, "auditing_firms")
    countries = values(db, snapshot_id, "auditing_firm_countries")

    assert firms[("all", "total", "")] == 2
    assert firms[("all", "country", "FR")] == 1 and ("all", "country", "US") not in firms
    assert (firms[("2018", "total", "")], firms[("2019", "total", "")]) == (1, 2)
    assert firms[("2021", "total", "")] == 3
    assert countries[("all", "total", "")] == 3  # DE, FR, BR
    assert countries[("2019", "total", "")] == 3  # DE, FR, US
    assert countries[("2021", "total", "")] == 4


def test_trainings_count_distinct_people_since_2017_and_report_future_dates(settings, db):
    rows = [
        ("a1", "auditor", "PS", date(2016, 12, 31)),
        ("a1", "auditor", "CoC", date(2018, 5, 1)),
        ("a2", "auditor", "PS", date(2017, 1, 1)),
        ("a2", "auditor", "CoC", date(2017, 2, 1)),
        ("a3", "auditor", "PS", date(2027, 1, 1)),
        ("m1", "member", "PS", date(2019, 1, 1)),
        ("s1", "stakeholder", "PS", date(2020, 1, 1)),
        ("s1", "stakeholder", "CoC", date(2021, 1, 1)),
        ("m2", "member", "PS", date(2015, 1, 1)),
    ]
    for key, role, course, day in rows:
        db.add(Training(person_key=key, role=role, course=course, completed_on=day))
    db.commit()
    snapshot_id = build(settings)

    auditors = values(db, snapshot_id, "auditors_trained")
    others = values(db, snapshot_id, "members_stakeholders_trained")

    assert auditors[("all", "total", "")] == 2
    assert auditors[("all", "course", "PS")] == 1 and auditors[("all", "course", "CoC")] == 2
    assert (auditors[("2017", "total", "")], auditors[("2018", "total", "")]) == (1, 2)
    assert others[("all", "total", "")] == 2
    # Cumulative from each person's first course since 2017: s1's second course adds no one.
    cumulative = [others.get((str(year), "total", "")) for year in range(2018, 2023)]
    assert cumulative == [None, 1, 2, 2, 2]
    assert others[("all", "role", "member")] == 1 and others[("all", "role", "stakeholder")] == 1
    checks = db.get(Snapshot, snapshot_id).data_quality["checks"]
    assert checks["trainings_in_the_future"]["count"] == 1


def test_no_training_yet_counts_no_one_trained(settings, db):
    db.add(Training(person_key="a1", role="auditor", course="PS", completed_on=date(2016, 5, 1)))
    db.commit()
    snapshot_id = build(settings)

    auditors = values(db, snapshot_id, "auditors_trained")

    assert auditors == {("all", "total", ""): 0}


def test_meetings_count_since_2016_with_a_yearly_series(settings, db):
    for body, day in [
        ("board", date(2015, 12, 1)),
        ("board", date(2016, 3, 1)),
        ("board", date(2016, 9, 1)),
        ("board", date(2020, 1, 1)),
        ("board", date(2026, 7, 15)),
        ("standards_committee", date(2017, 5, 5)),
    ]:
        db.add(Meeting(body=body, held_on=day))
    db.commit()
    snapshot_id = build(settings)

    board = values(db, snapshot_id, "board_meetings")

    assert board[("all", "total", "")] == 3
    assert (board[("2016", "total", "")], board[("2020", "total", "")]) == (2, 1)
    assert values(db, snapshot_id, "standards_committee_meetings")[("all", "total", "")] == 1
    checks = db.get(Snapshot, snapshot_id).data_quality["checks"]
    assert checks["meetings_in_the_future"]["count"] == 1


def test_applications_received_count_up_to_the_snapshot_day(settings, db):
    for number, (status, when) in enumerate(
        [
            ("received", datetime(2024, 3, 1, 12, tzinfo=UTC)),
            ("approved", datetime(2025, 5, 5, 12, tzinfo=UTC)),
            ("received", datetime(2026, 6, 30, 20, tzinfo=UTC)),
            ("received", datetime(2026, 7, 1, 12, tzinfo=UTC)),
        ]
    ):
        db.add(
            Application(
                reference=f"APP-{number}", organisation=f"Org {number}",
                membership_class="Civil Society", country="FR", contact_name="A",
                contact_email="a@example.org", status=status, created_at=when,
            )
        )  # fmt: skip
    db.commit()

    got = values(db, build(settings), "applications_received")

    assert got[("all", "total", "")] == 3
    assert got[("all", "status", "received")] == 2 and got[("all", "status", "approved")] == 1
    assert got[("all", "country", "FR")] == 3
    assert [got[(year, "total", "")] for year in ("2024", "2025", "2026")] == [1, 1, 1]


@pytest.fixture
def surveys(db):
    """Seven members; accepted, amended, submitted-only and inconsistent answers for 2025."""
    pt = {"membership_class": "Production & Transformation"}
    iu = {"membership_class": "Industrial Users"}
    a, b = make_member(db, **pt), make_member(db, **pt)
    c, d, g = make_member(db, **iu), make_member(db, **iu), make_member(db, **iu)
    e = make_member(db, membership_class="Civil Society")
    make_member(db, membership_class="Civil Society")  # never answers
    older = make_survey(db, year=2024, status="closed")
    survey = make_survey(db, year=2025)
    add_question(db, survey, "renewable_share", "decimal", "median", 3)
    add_question(db, survey, "main_product", "select_one", "count", 4)
    add_question(db, survey, "comments", "text", "none", 5)
    make_response(db, a, older, {"employees": 50, "women_share": 10, "human_rights_policy": 0})
    yes, no = 1, 0
    make_response(
        db, a, survey,
        {"employees": 100, "women_share": 20, "human_rights_policy": yes,
         "renewable_share": 10, "main_product": "ingot"},
    )  # fmt: skip
    make_response(
        db, b, survey,
        {"employees": 999, "women_share": 99, "human_rights_policy": yes},
        {"employees": 200, "women_share": 30, "human_rights_policy": no,
         "renewable_share": 20, "main_product": "ingot"},
    )  # fmt: skip
    make_response(
        db, c, survey,
        {"employees": 300, "women_share": 150, "human_rights_policy": yes,
         "renewable_share": 40, "main_product": "foil", "bogus": 5},
    )  # fmt: skip
    make_response(
        db, d, survey,
        {"employees": 400, "women_share": 40, "human_rights_policy": yes, "renewable_share": 90},
    )  # fmt: skip
    make_response(
        db, g, survey,
        {"employees": 0, "women_share": 10, "human_rights_policy": no, "renewable_share": 50},
    )  # fmt: skip
    make_response(db, e, survey, {"employees": 10000, "women_share": 1}, status="submitted")
    db.commit()


def test_survey_indicators_use_accepted_current_answers_within_the_definition(
    settings, db, surveys
):
    snapshot_id = build(settings)

    employees = values(db, snapshot_id, "survey_employees")
    assert employees[("2025", "total", "")] == 1000  # 100+200+300+400+0; B's amendment counts
    assert employees[("all", "total", "")] == 1000  # the headline is the latest year
    assert employees[("2024", "total", "")] == 50
    assert employees[("2025", "membership_class", "Industrial Users")] == 700
    assert values(db, snapshot_id, "survey_women_share")[("all", "total", "")] == 25.0  # 150 out
    assert values(db, snapshot_id, "survey_human_rights_policy")[("all", "total", "")] == 60.0


def test_the_survey_median_is_the_middle_answer_or_the_mean_of_the_two_middle_ones(
    settings, db, surveys
):
    median = values(db, build(settings), "survey_renewable_share")

    assert median[("all", "total", "")] == 40  # 10 20 [40] 50 90
    assert median[("all", "membership_class", "Industrial Users")] == 50  # 40 [50] 90
    assert median[("all", "membership_class", "Production & Transformation")] == 15  # 10 20


def test_a_count_question_counts_answers_and_each_choice(settings, db, surveys):
    got = values(db, build(settings), "survey_main_product")

    assert got[("all", "total", "")] == 3
    assert got[("all", "answer", "ingot")] == 2 and got[("all", "answer", "foil")] == 1


def test_survey_figures_carry_their_coverage(settings, db, surveys):
    snapshot_id = build(settings)
    employees = published(db, snapshot_id, "survey_employees")

    assert employees[("2025", "coverage", "answered")].value == 5
    assert employees[("2025", "coverage", "members")].value == 7
    assert employees[("all", "total", "")].contributors is None  # withheld: coverage says it


def test_survey_indicators_come_from_the_definition_with_their_metadata(settings, db, surveys):
    snapshot = db.get(Snapshot, build(settings))

    survey_codes = {code for code in snapshot.indicators if code.startswith("survey_")}
    assert survey_codes == {
        "survey_employees",
        "survey_women_share",
        "survey_human_rights_policy",
        "survey_renewable_share",
        "survey_main_product",
        "survey_response_rate",
    }  # "comments" aggregates as none: no indicator
    employees = snapshot.indicators["survey_employees"]
    assert (employees["survey_question"], employees["aggregation"]) == ("employees", "sum")
    assert employees["unit"] == "people" and "accepted" in employees["rule"]
    assert snapshot.indicators["ps_certificates"]["title"].startswith("Certificates issued")
    checks = snapshot.data_quality["checks"]
    assert checks["survey_answers_outside_definition"]["count"] == 1
    assert checks["survey_answers_out_of_bounds"]["count"] == 1
    assert list(checks)[4:7] == [  # the staff page lists them in this order
        "survey_answers_outside_definition",
        "survey_answers_out_of_bounds",
        "trainings_in_the_future",
    ]


def test_every_catalogue_indicator_publishes_a_headline_even_on_an_empty_database(settings, db):
    snapshot = db.get(Snapshot, build(settings))

    cells = {
        v.indicator: v
        for v in db.scalars(
            select(IndicatorValue).where(
                IndicatorValue.snapshot_id == snapshot.id,
                IndicatorValue.period == "all",
                IndicatorValue.breakdown == "total",
            )
        )
    }
    counted = set(snapshot.indicators) - {"survey_response_rate", "ps_external_leverage_pct"}
    assert counted <= set(cells)
    assert all(cells[code].value == 0 and not cells[code].suppressed for code in counted)


def test_survey_cells_of_too_few_members_are_suppressed_with_their_only_sibling(
    settings, db, surveys
):
    snapshot_id = build(settings, threshold=3)
    employees = published(db, snapshot_id, "survey_employees")

    small = employees[("2025", "membership_class", "Production & Transformation")]
    sibling = employees[("2025", "membership_class", "Industrial Users")]
    assert small.suppressed and small.value is None and small.contributors is None
    assert sibling.suppressed and sibling.value is None  # else 1000 - 700 reveals it
    assert employees[("2024", "total", "")].suppressed  # one member answered in 2024
    assert employees[("all", "total", "")].value == 1000
    assert not employees[("2025", "coverage", "answered")].suppressed


def test_a_question_keyed_like_a_catalogue_indicator_does_not_shadow_it(settings, db):
    survey = make_survey(db)
    add_question(db, survey, "response_rate", "decimal", "mean", 9)
    db.commit()

    snapshot = db.get(Snapshot, build(settings))

    assert snapshot.indicators["survey_response_rate"]["survey_question"] is None
    assert snapshot.indicators["survey_q_response_rate"]["survey_question"] == "response_rate"
