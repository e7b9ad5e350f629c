"""An attacker with only public access tries to recover members' values from every build.

A scripted history (members joining and leaving, a late acceptance, an amended answer, one new
facility per year, a single-member class) is published build by build. Every build counts as
public (the strongest assumption: releases are a subset of builds). The attacker reads each
build's public cells the way the dashboard does, adds what a reader would derive (a mean times
the members it covers), and tries every cell, pair and triple of them, within a build and across
two consecutive builds, with every sign. No member's headcount or answer may come out exactly.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import date
from itertools import pairwise

from sqlalchemy import func, select, update

from aggregator.build import build_snapshot
from outcomes.db import get_engine
from outcomes.models import (
    Certificate,
    Member,
    Outbox,
    Snapshot,
    SurveyAnswer,
    SurveyResponse,
    SurveyRevision,
)
from outcomes.queries import snapshot_values
from outcomes.queue import enqueue, request_aggregation
from tests.conftest import wait_for
from tests.factories import make_member, make_survey
from tests.integration.test_aggregation_catalogue import certify, make_response, make_site

# Closer than this is an exact recovery: a sum of doubles is off by far less, noise by far more.
EXACT = 1e-9
P_T, IU, CS = "Production & Transformation", "Industrial Users", "Civil Society"
# Member: class, country, facilities as (headcount, year certified), 2024 and 2025 answers as
# (employees, women_share, human_rights_policy). Headcounts and employees are odd, so no sum of
# two of them is another's value by chance.
MEMBERS = {
    "A": (P_T, "DE", [(1201, 2021), (1505, 2024)], (1001, 41.3, 1), (1011, 44.7, 1)),
    "B": (P_T, "DE", [(3333, 2021)], (2503, 27.9, 0), (2513, 29.3, 1)),
    "C": (P_T, "FR", [(519, 2021)], (3005, 33.7, 1), (3015, 35.1, 0)),
    "D": (P_T, "FR", [(7777, 2023)], None, (1999, 39.5, 1)),  # accepted late
    "E": (IU, "FR", [(2047, 2021)], (1507, 52.1, 1), (1517, 50.9, 1)),
    "F": (IU, "NO", [(911, 2021)], (809, 18.9, 0), None),  # leaves in 2025
    "G": (IU, "NO", [(777, 2022)], None, (4003, 23.1, 0)),
    "H": (CS, "DE", [(4099, 2021)], None, (611, 60.7, 1)),  # the only member of its class
}
LATE = {"I": (P_T, "CA", [(2999, 2025)], None, None)}  # joins in 2025
AMENDED = 2517  # B's accepted amendment of its 2025 employees
MEMBER_REPORTED = {"people_in_ps_facilities", "survey_employees", "survey_women_share"}
SURVEYED = MEMBER_REPORTED | {"survey_human_rights_policy"}


def secrets_of_members() -> list[float]:
    """Return every value a member confided: headcounts (each and per member) and answers."""
    found: list[float] = []
    for _klass, _country, sites, *answers in (*MEMBERS.values(), *LATE.values()):
        found += [people for people, _year in sites]
        found += [sum(people for people, _year in sites)] if len(sites) > 1 else []
        found += [value for answer in answers if answer for value in answer[:2]]
    return sorted({*found, AMENDED})


def add_member(db, name: str, row, surveys) -> Member:
    klass, country, sites, *answers = row
    joined = date(2025, 3, 1) if name in LATE else date(2019, 1, 1)
    member = make_member(db, name=f"Member {name}", membership_class=klass, country=country,
                         joined_on=joined)  # fmt: skip
    for people, year in sites:
        site = make_site(db, member, country, people)
        certify(db, member, [site], issued_on=date(year, 5, 1), country=country)
    for definition, answer in zip(surveys, answers, strict=True):
        if answer:
            employees, share, policy = answer
            values = {"employees": employees, "women_share": share, "human_rights_policy": policy}
            status = "submitted" if name == "D" else "accepted"
            make_response(db, member, definition, values, status=status)
    return member


def play_history(db, publish: Callable[[str], None]) -> None:
    """Write the scripted history, publishing a build after each step."""
    surveys = [make_survey(db, year=2024, status="closed"), make_survey(db, year=2025)]
    members = {name: add_member(db, name, row, surveys) for name, row in MEMBERS.items()}
    publish("aggregate")

    late = db.scalars(select(SurveyResponse).where(SurveyResponse.member_id == members["D"].id))
    response = late.one()
    response.status = "accepted"
    response.accepted_revision = response.current_revision
    db.execute(
        update(SurveyRevision)
        .where(SurveyRevision.response_id == response.id)
        .values(status="accepted")
    )
    publish("survey")

    members["F"].left_on = date(2025, 9, 30)
    db.execute(
        update(Certificate)
        .where(Certificate.member_id == members["F"].id)
        .values(withdrawn_on=date(2025, 9, 30))
    )
    publish("aggregate")  # membership and certification

    add_member(db, "I", LATE["I"], surveys)
    publish("aggregate")

    b_2025 = db.scalars(
        select(SurveyResponse).where(
            SurveyResponse.member_id == members["B"].id, SurveyResponse.year == 2025
        )
    ).one()
    amend(db, b_2025, AMENDED)
    publish("survey")


def amend(db, response: SurveyResponse, employees: int) -> None:
    """Add an accepted revision of a response with a changed employees answer."""
    current = db.scalars(
        select(SurveyRevision).where(
            SurveyRevision.response_id == response.id,
            SurveyRevision.number == response.current_revision,
        )
    ).one()
    answers = db.scalars(select(SurveyAnswer).where(SurveyAnswer.revision_id == current.id))
    revision = SurveyRevision(
        response_id=response.id, number=current.number + 1, status="accepted", answers={}
    )
    db.add(revision)
    db.flush()
    for answer in answers.all():
        changed = employees if answer.question_key == "employees" else answer.value_number
        db.add(
            SurveyAnswer(
                revision_id=revision.id,
                question_key=answer.question_key,
                value_number=changed,
                value_text=answer.value_text,
            )
        )
    response.current_revision = response.accepted_revision = revision.number
    db.flush()


def public_builds(db) -> list[list[dict]]:
    """Return the public cells of every finished build, oldest first, as the dashboard has them."""
    db.rollback()  # see the worker's commits
    ids = db.scalars(
        select(Snapshot.id).where(Snapshot.checksum.is_not(None)).order_by(Snapshot.id)
    )
    builds = []
    for snapshot_id in ids.all():
        cells = [
            {
                "indicator": v.indicator,
                "period": v.period,
                "breakdown": v.breakdown,
                "category": v.category,
                "value": None if v.suppressed else v.value,  # as dashboard.data publishes it
                "contributors": v.contributors,
                "suppressed": v.suppressed,
            }
            for v in snapshot_values(db, snapshot_id=snapshot_id)
        ]
        builds.append(cells)
    return builds


def known_numbers(cells: list[dict]) -> list[float]:
    """Return every number a reader has from a build's member-reported figures, and derives."""
    mine = [c for c in cells if c["indicator"] in SURVEYED | MEMBER_REPORTED]
    numbers = [c["value"] for c in mine if c["value"] is not None]
    numbers += [c["contributors"] for c in mine if c["contributors"] is not None]
    answered = {
        (c["indicator"], c["period"]): c["value"]
        for c in mine
        if (c["breakdown"], c["category"]) == ("coverage", "answered")
    }
    for c in mine:
        latest = max((p for i, p in answered if i == c["indicator"]), default=None)
        period = latest if c["period"] == "all" else c["period"]
        n = answered.get((c["indicator"], period))
        # A mean (or share) over the members answering that year gives their sum (or count).
        if c["breakdown"] == "total" and c["value"] is not None and n:
            numbers.append(c["value"] * n)
    return numbers


def recovered(numbers: list[float], secrets: list[float]) -> set[float]:
    """Return the secrets equal to some ±a, ±a±b or ±a±b±c of the numbers (a and b distinct)."""
    signed = sorted(
        a + s * b for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j
        for s in (1, -1)
    )  # fmt: skip

    def hit(target: float) -> bool:
        at = bisect.bisect_left(signed, target - EXACT)
        return at < len(signed) and signed[at] <= target + EXACT

    found = set()
    for secret in secrets:
        for wanted in (secret, -secret):
            singles = any(abs(a - wanted) <= EXACT for a in numbers)
            # A triple a±b±c equals the secret when a±b equals the secret ∓ c (c may repeat a or
            # b: that only adds combinations, so the attacker is never weaker for it).
            if singles or hit(wanted) or any(hit(wanted - c) or hit(wanted + c) for c in numbers):
                found.add(secret)
    return found


def attack(builds: list[list[dict]]) -> set[float]:
    """Return the member values recovered within any build or any two consecutive builds."""
    secrets = secrets_of_members()
    windows = [known_numbers(b) for b in builds]
    windows += [known_numbers(a) + known_numbers(b) for a, b in pairwise(builds)]
    found: set[float] = set()
    for numbers in windows:
        found |= recovered(numbers, secrets)
    return found


def cell(build: list[dict], code: str, period: str, breakdown: str = "total", category=""):
    return next(
        c
        for c in build
        if (c["indicator"], c["period"], c["breakdown"], c["category"])
        == (code, period, breakdown, category)
    )


def test_no_member_value_comes_out_of_any_pair_or_triple_of_public_cells(worker_app, settings, db):
    failed = select(Snapshot.error).where(Snapshot.status == "failed")

    def publish(topic: str) -> None:
        row = request_aggregation(db, reason=f"attack script: {topic}", requested_by=None,
                                  topic=topic)  # fmt: skip
        db.commit()
        enqueue(settings, row)
        done = select(Outbox.processed_at).where(Outbox.id == row.id)
        wait_for(lambda: db.rollback() or db.scalar(done) or db.scalar(failed))

    play_history(db, publish)
    builds = public_builds(db)

    assert db.scalar(failed) is None
    assert len(builds) == 5
    assert attack(builds) == set()
    # Attacks (a) to (d) of issue 11 by hand, each off by the documented noise, never exact:
    # (a) contributors of member-reported cells are withheld, so none equals a hidden count.
    reported = [c for b in builds for c in b if c["indicator"] in SURVEYED | MEMBER_REPORTED]
    assert all(c["contributors"] is None for c in reported if c["breakdown"] != "coverage")
    # (b) the late acceptance: the 2025 employees total before and after D's 1999.
    before, after = (cell(b, "survey_employees", "2025")["value"] for b in builds[:2])
    assert after - before != 1999 and abs(after - before - 1999) <= 0.1 * 4003 * 2
    # (c) the yearly series: 2022 minus 2021 is G's new facility of 777 people.
    first = builds[0]
    grew = cell(first, "people_in_ps_facilities", "2022")["value"]
    grew -= cell(first, "people_in_ps_facilities", "2021")["value"]
    assert grew != 777 and abs(grew - 777) <= 0.1 * 4099 * 2
    # (d) a suppressed country cell (Norway: F and G) stays suppressed in every build.
    assert all(cell(b, "people_in_ps_facilities", "all", "country", "NO")["suppressed"]
               for b in builds)  # fmt: skip


def test_the_same_attack_recovers_members_values_when_the_noise_is_switched_off(settings, db):
    engine = get_engine(settings.database_url)

    def publish(topic: str) -> None:
        request_aggregation(db, reason=f"attack script: {topic}", requested_by=None, topic=topic)
        db.commit()
        build_snapshot(engine, trigger=topic, perturb=False)

    play_history(db, publish)
    builds = public_builds(db)

    assert db.scalar(select(func.count()).select_from(Snapshot)) == 5
    found = attack(builds)
    # Threshold suppression alone gives away the late acceptance (1999 employees, 39.5 %), the
    # yearly series (777 people) and the single-member class's answer (611), among others.
    assert {1999, 39.5, 777, 611} <= found
