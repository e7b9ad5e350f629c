"""The bench's generator and harness at a tiny scale: they work, nothing here is timed."""

import asyncio
import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from sqlalchemy import func, select

from aggregator.build import build_snapshot
from bench import ceiling, load
from bench.generate import QUESTIONS, generate, submission
from bench.handsql import hand_cells, same_cells
from bench.large import generate_large
from bench.run import Config, Figure, framework_floor, put_maker, rebuild_seconds, table
from outcomes import models as m
from outcomes.db import get_engine
from tests.conftest import serving, unavailable


def test_the_generator_loads_a_programme_with_revisions_and_typed_answers(settings, db):
    data = generate(settings.database_url, members=250, answers=3000, accounts=2)

    revisions = db.scalars(select(m.SurveyRevision.answers)).all()
    assert data.rows["member"] == 250
    assert data.rows["certificate"] > 100 and data.rows["auditing_firm"] == 25
    assert 2000 < data.answers < 4500
    assert db.scalar(select(func.count()).select_from(m.SurveyAnswer)) == data.answers
    assert sum(len(r) for r in revisions) == data.answers
    assert len(data.tokens) == 2


def test_a_generated_submission_answers_every_required_question():
    answers = submission(random.Random(1))

    assert {q["key"] for q in QUESTIONS if q["required"]} <= set(answers)


def test_the_hand_written_sql_computes_the_same_cells_as_the_catalogue(settings):
    generate(settings.database_url, members=250, answers=2000)
    engine = get_engine(settings.database_url)
    build_snapshot(engine, trigger="test", force=True)

    _seconds, built = rebuild_seconds(settings.database_url, runs=1)
    _seconds, hand, _uncovered = hand_cells(engine, as_of=date.today())

    assert len(built) > 50
    assert same_cells(hand, built)


def test_submissions_through_gunicorn_and_their_ceiling_run_without_errors(settings):
    data = generate(settings.database_url, members=250, answers=1000, accounts=2)
    with serving("collector", settings) as base:
        port = int(base.rsplit(":", 1)[1])
        run = load.closed_loop(
            "127.0.0.1", port, put_maker(data.tokens, port=port), connections=2, seconds=1
        )
        # A thread of its own: the session's Playwright browser keeps an event loop running here.
        with ThreadPoolExecutor(1) as thread:
            result = thread.submit(asyncio.run, run).result()
    dialect = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    sql = ceiling.script(dialect, submission(random.Random(2)))
    if dialect == "sqlite":
        top = ceiling.sqlite_loop(
            settings.database_url.removeprefix("sqlite:///"), sql, clients=2, seconds=1, accounts=2
        )
    else:
        if shutil.which("pgbench") is None:
            unavailable("pgbench")
        top = ceiling.pgbench(settings.database_url, sql, clients=2, seconds=1, accounts=2)

    assert result.ok > 0 and result.errors == 0
    assert dict(result.statuses) == {200: result.ok}
    assert top.transactions > 0 and top.failed == 0


def test_the_empty_put_floor_runs_through_the_collectors_server_command(tmp_path):
    cfg = Config("sqlite://", "redis://127.0.0.1:6379/15", tmp_path / "x.db", seconds=1)

    with ThreadPoolExecutor(1) as thread:  # as above: keep off the browser's event loop
        figures = thread.submit(framework_floor, cfg).result()

    assert [f.key for f in figures] == ["floor 2c", "floor 16c"]
    assert all(f.value > 0 and "errors 0;" in f.note for f in figures)
    assert all(f.met == (f.value > 3000) for f in figures)


def test_the_table_shows_each_figure_with_its_ratio_to_the_baseline():
    text = table([Figure("P4", "rebuild", 3.0, "s", 2.0, "hand SQL", "<= 1.5x", True)])

    assert "1.50x" in text and "yes" in text


def test_the_large_programme_loads_in_its_proportions_and_builds(settings, db):
    data = generate_large(settings.database_url, scale=0.0005)

    assert data.rows["member"] == 5 and data.rows["facility"] == 75
    assert data.rows["certificate"] == 125 and data.rows["training"] == 2500
    assert data.rows["survey_revision"] == 500
    assert data.rows["survey_answer"] == 500 * 50
    covered = select(func.count()).select_from(m.certificate_facility).join(m.Facility)
    assert db.scalar(covered) == 125
    result = build_snapshot(get_engine(settings.database_url), trigger="test", force=True)
    assert result.snapshot_id is not None
