"""The largest programme's scale: a data set streamed into PostgreSQL with COPY.

At --scale 1: 10k members, 150k facilities, 250k certificates (each covering one facility),
5M training records, and ten reporting years of surveys: 100k responses (a member answers once
a year), 1M revisions and 50M typed answers (50 questions, each answered). Rows are produced
by generators and written row by row, so memory stays flat at any scale. A revision's JSON
body is left empty: builds and exports read the typed answers only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.generate import CHOICES, NUMERIC, QUESTIONS, Generated, Loader, _programme
from outcomes import demo
from outcomes import models as m
from outcomes.db import get_engine

FULL = {
    "members": 10_000,
    "facilities": 150_000,
    "certificates": 250_000,
    "trainings": 5_000_000,
    "revisions": 1_000_000,
}
YEARS = tuple(range(2016, 2026))
OPEN_YEAR = YEARS[-1]
# The bench survey's 30 questions and 20 more typed ones: 50 answers per revision.
LARGE_QUESTIONS = (
    *QUESTIONS,
    *(
        {
            "key": f"large_{kind}_{n:02d}",
            "label": f"Large programme {kind} question {n}",
            "type": kind,
            "unit": "",
            "minimum": None,
            "maximum": None,
            "required": False,
            "aggregation": {"integer": "sum", "decimal": "mean", "boolean": "share_yes"}[kind],
        }
        for n, kind in enumerate(("integer", "decimal", "boolean", "decimal") * 5, start=1)
    ),
)
COUNTRIES = ("DE", "FR", "GB", "US", "CN", "IN", "BR", "AU", "CA", "GH", "ZA", "ID", "NO", "IS")


def generate_large(url: str, *, scale: float, seed: int = 17) -> Generated:
    """Load the large programme, `scale` times its full size, into an empty migrated database."""
    started = time.perf_counter()
    size = {name: max(1, round(n * scale)) for name, n in FULL.items()}
    result = Generated()
    rng = random.Random(seed)
    engine = get_engine(url)
    with engine.begin() as conn:
        loader = Loader(conn, result.rows)
        small = _programme(seed, 1, date.today())
        for table in (
            m.SiteFlag.__table__,
            m.AuditingFirm.__table__,
            m.auditing_firm_country,
            m.ExternalCertification.__table__,
            m.Meeting.__table__,
        ):
            loader.load(table, small[table])
        loader.load(m.Member.__table__, _members(rng, size["members"]))
        loader.load(m.Facility.__table__, _facilities(rng, size))
        loader.load(m.Certificate.__table__, _certificates(rng, size))
        loader.load(
            m.certificate_facility,
            ((c, 1 + (c - 1) % size["facilities"]) for c in range(1, size["certificates"] + 1)),
        )
        loader.load(m.Training.__table__, _trainings(rng, size["trainings"]))
        _surveys(loader, rng, size)
        loader.finish()
    result.seconds = time.perf_counter() - started
    return result


def _members(rng: random.Random, count: int) -> Iterator[tuple]:
    classes = list(demo.CLASS_SIZES)
    now = datetime.now(UTC)
    for i in range(1, count + 1):
        joined = date(2012, 1, 1) + timedelta(days=rng.randrange(8 * 365))
        yield (
            i, f"LM-{i:06d}", f"Large member {i}", classes[i % len(classes)], rng.choice(COUNTRIES),
            joined, None, "active", now,
        )  # fmt: skip


def _facilities(rng: random.Random, size: dict[str, int]) -> Iterator[tuple]:
    now = datetime.now(UTC)
    for i in range(1, size["facilities"] + 1):
        member = 1 + (i - 1) % size["members"]
        yield (
            i, member, f"LF-{i:07d}", f"Facility {i}", rng.choice(COUNTRIES), rng.randint(5, 3000),
            None, now,
        )  # fmt: skip


def _certificates(rng: random.Random, size: dict[str, int]) -> Iterator[tuple]:
    now = datetime.now(UTC)
    for i in range(1, size["certificates"] + 1):
        issued = date(2014, 1, 1) + timedelta(days=rng.randrange(11 * 365))
        withdrawn = issued + timedelta(days=400) if rng.random() < 0.03 else None
        yield (
            i, f"L-{i:07d}", 1 + (i - 1) % size["members"], "PS" if rng.random() < 0.6 else "CoC",
            "full" if rng.random() < 0.85 else "provisional", "initial", issued,
            issued + timedelta(days=3 * 365), withdrawn, 1 + i % 25, now,
        )  # fmt: skip


def _trainings(rng: random.Random, count: int) -> Iterator[tuple]:
    now = datetime.now(UTC)
    roles = ("auditor", "member", "member", "stakeholder")
    people = max(1, count // 3)
    for i in range(1, count + 1):
        person = rng.randrange(people)
        completed = date(2017, 3, 1) + timedelta(days=rng.randrange(3000))
        yield (i, f"L{person:07d}", roles[person % 4], "PS fundamentals", completed, now)


def _surveys(loader: Loader, rng: random.Random, size: dict[str, int]) -> None:
    """Load ten years of definitions, a response per member and year, revisions and answers."""
    definitions = [
        {
            "id": n,
            "year": year,
            "version": 1,
            "title": f"Survey {year}",
            "status": "open" if year == OPEN_YEAR else "closed",
        }
        for n, year in enumerate(YEARS, start=1)
    ]
    loader.load(m.SurveyDefinition.__table__, definitions)
    loader.load(
        m.SurveyQuestion.__table__,
        (
            {
                **q,
                "id": (d - 1) * len(LARGE_QUESTIONS) + i + 1,
                "definition_id": d,
                "position": i,
                "help_text": "",
                "choices": CHOICES if q["type"] == "select_one" else [],
            }
            for d in range(1, len(YEARS) + 1)
            for i, q in enumerate(LARGE_QUESTIONS)
        ),
    )
    responses = size["members"] * len(YEARS)
    per_response = max(1, size["revisions"] // responses)
    now = datetime.now(UTC)

    def response_rows() -> Iterator[tuple]:
        for r in range(responses):
            year_index, member = divmod(r, size["members"])
            final = "submitted" if YEARS[year_index] == OPEN_YEAR and r % 5 < 2 else "accepted"
            accepted = per_response if final == "accepted" else None
            yield (
                r + 1, member + 1, YEARS[year_index], year_index + 1, final, per_response,
                accepted, now,
            )  # fmt: skip

    def revision_rows() -> Iterator[tuple]:
        for r in range(responses):
            year = YEARS[r // size["members"]]
            at = datetime(year + 1, 1, 10, tzinfo=UTC)
            for n in range(1, per_response + 1):
                last = n == per_response
                final = "submitted" if year == OPEN_YEAR and r % 5 < 2 else "accepted"
                status = final if last else "submitted"
                at += timedelta(minutes=37)
                yield (r * per_response + n, r + 1, n, status, "{}", None, at)

    loader.load(m.SurveyResponse.__table__, response_rows())
    loader.load(m.SurveyRevision.__table__, revision_rows())
    loader.load(m.SurveyAnswer.__table__, _answers(rng, responses * per_response))


def _answers(rng: random.Random, revisions: int) -> Iterator[tuple]:
    """Yield every revision's typed answers (numbers as numbers, as the collector stores them)."""
    answer_id = 0
    for revision in range(1, revisions + 1):
        for q in LARGE_QUESTIONS:
            answer_id += 1
            yield (answer_id, revision, q["key"], *_value(rng, q), None)  # no facility: no repeat


def _value(rng: random.Random, question: dict[str, Any]) -> tuple[float | None, str | None]:
    kind = question["type"]
    if kind == "boolean":
        return (1.0 if rng.random() < 0.7 else 0.0), None
    if kind in NUMERIC:
        return float(rng.randrange(1000)), None
    if kind == "select_one":
        return None, rng.choice(CHOICES)["name"]
    return None, "Generated comment."
