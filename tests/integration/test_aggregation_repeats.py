"""Per-facility repeat answers aggregate per member, on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import func, literal, select

from outcomes.db import get_engine
from outcomes.indicator_sql import AnswerStage, row_tag, staged_answers
from outcomes.models import (
    Facility,
    RecordKey,
    Snapshot,
    SurveyAnswer,
    SurveyQuestion,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.repeats import answer_key
from tests.factories import make_member, make_survey
from tests.integration.test_aggregation_catalogue import build, published

# Per member: its class and each facility's energy; 5000 is above the question's maximum.
SITES = {
    "a": ("Production & Transformation", [100.0, 200.0]),
    "b": ("Production & Transformation", [10.0, 20.0, 30.0]),
    "c": ("Industrial Users", [40.0, 5000.0]),
    "d": ("Industrial Users", [1.5, 2.5, 6.0]),
}


@pytest.fixture
def repeats(db) -> dict[str, int]:
    """Four members answering a repeat per facility (2 or 3 each) and a flat question; accepted."""
    survey = make_survey(db, year=2025)
    db.add(
        SurveyQuestion(
            definition_id=survey.id, position=3, key="site_energy_mwh", label="Energy",
            type="decimal", unit="MWh", minimum=0, maximum=1000, aggregation="sum",
            help_text="", choices=[], logic={"repeat": "each_site", "section": "Each site"},
        )
    )  # fmt: skip
    ids = {}
    for name, (membership_class, energies) in SITES.items():
        member = make_member(db, membership_class=membership_class)
        ids[name] = member.id
        sites = [
            Facility(member_id=member.id, name=f"{name} site {n}", country="DE", people=1)
            for n in range(len(energies))
        ]
        db.add_all(sites)
        db.flush()
        response = SurveyResponse(
            member_id=member.id, year=2025, definition_id=survey.id, status="accepted",
            current_revision=1, accepted_revision=1,
        )  # fmt: skip
        db.add(response)
        db.flush()
        answers: dict[str, float] = {"employees": 10.0}
        answers |= {
            answer_key("site_energy_mwh", site.id): energy
            for site, energy in zip(sites, energies, strict=True)
        }
        revision = SurveyRevision(
            response_id=response.id, number=1, status="accepted", answers=answers
        )
        db.add(revision)
        db.flush()
        db.add(SurveyAnswer(revision_id=revision.id, question_key="employees", value_number=10))
        db.add_all(
            SurveyAnswer(
                revision_id=revision.id,
                question_key="site_energy_mwh",
                value_number=energy,
                facility_id=site.id,
            )
            for site, energy in zip(sites, energies, strict=True)
        )
        if name == "a":  # a facility's answer to a question the definition does not ask
            db.add(
                SurveyAnswer(
                    revision_id=revision.id,
                    question_key="site_water_m3",
                    value_number=5,
                    facility_id=sites[0].id,
                )
            )
    db.commit()
    return ids


def test_a_repeat_sums_each_members_facilities_and_counts_members(settings, db, repeats):
    snapshot_id = build(settings)

    energy = published(db, snapshot_id, "survey_site_energy_mwh")
    assert energy[("2025", "total", "")].value == 100 + 200 + 10 + 20 + 30 + 40 + 1.5 + 2.5 + 6
    assert energy[("2025", "membership_class", "Industrial Users")].value == 50  # 5000 left out
    assert energy[("2025", "coverage", "answered")].value == 4  # members, not their 10 facilities
    assert published(db, snapshot_id, "survey_employees")[("all", "total", "")].value == 40
    checks = db.get(Snapshot, snapshot_id).data_quality["checks"]
    assert checks["survey_answers_out_of_bounds"]["by_year"] == {"2025": 1}
    assert checks["survey_answers_outside_definition"]["by_year"] == {"2025": 1}


def test_a_members_facilities_are_one_contributor_to_disclosure_control(settings, db, repeats):
    energy = published(db, build(settings, threshold=3), "survey_site_energy_mwh")

    # Two members of each class (five facilities each): too few, whatever their facilities.
    for membership_class in ("Production & Transformation", "Industrial Users"):
        assert energy[("2025", "membership_class", membership_class)].suppressed
    assert not energy[("2025", "total", "")].suppressed  # four members


def test_a_repeat_stages_one_row_per_member_tagged_by_its_total(settings, db, repeats):
    build(settings)  # draws the members' record keys
    staged = staged_answers.c
    with get_engine(settings.database_url).connect() as conn, conn.begin():
        stage = AnswerStage(conn, ["site_energy_mwh", "employees"])
        stage.cover(None)
        rows = conn.execute(
            select(staged.member_id, staged.value_number, staged.value_text, staged.tag)
            .where(staged.question_key == "site_energy_mwh")
            .order_by(staged.member_id)
        ).all()
        keys = dict(conn.execute(select(RecordKey.member_id, RecordKey.key)).all())
        expected = [
            conn.scalar(select(row_tag(literal(member), literal(keys[member]), literal(total))))
            for member, total, _text, _tag in rows
        ]
        flat = conn.scalar(
            select(func.count())
            .where(staged.question_key == "employees")
            .select_from(staged_answers)
        )
        stage.drop()

    assert [(member, total, text) for member, total, text, _tag in rows] == [
        (repeats["a"], 300.0, None),
        (repeats["b"], 60.0, None),
        (repeats["c"], 40.0, None),
        (repeats["d"], 10.0, None),
    ]
    assert [tag for *_values, tag in rows] == expected
    assert flat == 4
