"""Disclosure control: small member-reported cells are withheld, and what would reveal them."""

from datetime import date

from sqlalchemy import select

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from outcomes.models import IndicatorValue
from tests.factories import make_certificate, make_member, make_survey
from tests.integration.test_aggregation_catalogue import add_question, make_response

AS_OF = date(2026, 6, 30)


def certify_members(db, country: str, how_many: int) -> None:
    """Give each of how_many new members a PS certificate on a 100-person site in the country."""
    for _ in range(how_many):
        make_certificate(db, member=make_member(db, country=country), country=country)


def people(
    settings, db, threshold: int = 3, *, perturb: bool = False
) -> dict[tuple[str, str, str], IndicatorValue]:
    engine = get_engine(settings.database_url)
    result = build_snapshot(
        engine, trigger="test", as_of=AS_OF, force=True, threshold=threshold, perturb=perturb
    )
    db.commit()  # end the session's read transaction, so it sees the new snapshot
    rows = db.scalars(
        select(IndicatorValue).where(
            IndicatorValue.snapshot_id == result.snapshot_id,
            IndicatorValue.indicator == "people_in_ps_facilities",
        )
    )
    return {(v.period, v.breakdown, v.category): v for v in rows}


def test_a_cell_of_fewer_members_than_the_threshold_is_suppressed_never_zero(settings, db):
    certify_members(db, "DE", 3)
    certify_members(db, "FR", 4)
    certify_members(db, "NO", 1)
    db.commit()

    cells = people(settings, db)

    norway = cells[("all", "country", "NO")]
    assert norway.suppressed and norway.value is None
    assert norway.contributors is None  # how many members a cell holds is withheld too
    assert cells[("all", "total", "")].value == 800  # eight members: the total is safe


def test_the_next_smallest_sibling_is_suppressed_so_the_total_does_not_reveal_a_cell(settings, db):
    certify_members(db, "DE", 3)
    certify_members(db, "FR", 4)
    certify_members(db, "NO", 1)
    db.commit()

    cells = people(settings, db)

    germany, france = cells[("all", "country", "DE")], cells[("all", "country", "FR")]
    assert germany.suppressed and germany.value is None  # else total - FR - DE = NO
    assert not france.suppressed and france.value == 400
    # Whatever is published, NO cannot be derived: two unknowns remain in the breakdown.
    hidden = [c for (p, b, _), c in cells.items() if (p, b) == ("all", "country") and c.suppressed]
    assert len(hidden) == 2


def test_two_small_cells_hide_each_other_without_secondary_suppression(settings, db):
    certify_members(db, "DE", 3)
    certify_members(db, "FR", 4)
    certify_members(db, "NO", 1)
    certify_members(db, "CA", 1)
    db.commit()

    cells = people(settings, db)

    by_country = {k[2]: c for k, c in cells.items() if k[:2] == ("all", "country")}
    assert {c for c, cell in by_country.items() if cell.suppressed} == {"NO", "CA"}
    assert by_country["DE"].value == 300 and by_country["FR"].value == 400


def test_the_threshold_is_configurable(settings, db):
    certify_members(db, "DE", 3)
    certify_members(db, "FR", 4)
    db.commit()

    cells = people(settings, db, threshold=4)

    assert cells[("all", "country", "DE")].suppressed
    assert cells[("all", "country", "FR")].suppressed  # secondary: the only sibling
    assert cells[("all", "total", "")].value == 700


def test_public_registers_are_not_suppressed(settings, db):
    certify_members(db, "NO", 1)
    db.commit()
    engine = get_engine(settings.database_url)
    result = build_snapshot(engine, trigger="test", as_of=AS_OF, force=True, threshold=3)

    certificates = db.scalars(
        select(IndicatorValue).where(
            IndicatorValue.snapshot_id == result.snapshot_id,
            IndicatorValue.indicator == "ps_certificates",
        )
    ).all()
    assert certificates and not any(c.suppressed for c in certificates)


def test_member_reported_cells_carry_noise_within_a_tenth_of_their_largest_value(settings, db):
    certify_members(db, "DE", 3)
    certify_members(db, "FR", 4)
    db.commit()

    cells = people(settings, db, perturb=True)

    total, france = cells[("all", "total", "")], cells[("all", "country", "FR")]
    assert total.value != 700 and abs(total.value - 700) <= 10  # the largest site has 100
    assert france.value != 400 and abs(france.value - 400) <= 10
    assert total.contributors is None and france.contributors is None


def test_the_same_members_get_the_same_noise_in_every_cell_and_snapshot(settings, db):
    certify_members(db, "DE", 4)
    db.commit()

    first = people(settings, db, perturb=True)
    again = people(settings, db, perturb=True)

    # Germany holds exactly the members of the total: one value, so nothing to average away.
    assert first[("all", "total", "")].value == first[("all", "country", "DE")].value
    assert first[("all", "total", "")].value == again[("all", "total", "")].value
    assert first[("all", "total", "")].value != 400


def test_one_member_more_moves_the_noise_so_the_difference_is_not_their_value(settings, db):
    certify_members(db, "DE", 4)
    db.commit()
    before = people(settings, db, perturb=True)[("all", "total", "")].value
    certify_members(db, "DE", 1)
    db.commit()

    after = people(settings, db, perturb=True)[("all", "total", "")].value

    assert after - before != 100 and abs(after - before - 100) <= 20


def test_a_huge_answer_gets_noise_like_any_other_and_breaks_no_build(settings, db):
    survey = make_survey(db)
    add_question(db, survey, "tonnes", "decimal", "sum", 9)
    for tonnes in (1e300, 2.5, 7.25):
        make_response(db, make_member(db), survey, {"tonnes": tonnes})
    db.commit()
    engine = get_engine(settings.database_url)

    result = build_snapshot(engine, trigger="test", as_of=AS_OF, force=True)

    db.commit()
    total = db.scalars(
        select(IndicatorValue).where(
            IndicatorValue.snapshot_id == result.snapshot_id,
            IndicatorValue.indicator == "survey_tonnes",
            IndicatorValue.period == "all",
            IndicatorValue.breakdown == "total",
        )
    ).one()
    assert total.value != 1e300 and abs(total.value - 1e300) <= 0.1 * 1e300
