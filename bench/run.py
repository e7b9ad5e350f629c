"""`make bench`: measure the system beside same-run baselines, print one table, write results.json.

Every load is bounded in time and stays on 127.0.0.1. Run `python -m bench.run --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import redis
from sqlalchemy import Engine, event, func, make_url, select, text
from sqlalchemy.orm import Session

from bench import ceiling, load
from bench.generate import (
    OPEN_YEAR,
    add_member_tokens,
    drop_database,
    generate,
    log,
    prepare_database,
    submission,
)
from bench.handsql import differences, hand_cells
from outcomes import models as m
from outcomes.db import get_engine
from outcomes.runner import free_port, service_command, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("P1", "P2", "P4", "P5", "P6", "P9", "P10", "export")
OUTCOMES = str(Path(sys.executable).parent / "outcomes")
HOST = "127.0.0.1"


@dataclass
class Figure:
    """One measured figure beside its same-run baseline and its target."""

    key: str
    what: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Return the figure divided by its baseline."""
        return self.value / self.baseline if self.baseline else None


@dataclass
class Config:
    """What one bench run measures and at which scale."""

    pg_url: str
    redis_url: str
    sqlite_path: Path
    members: int = 5000
    answers: int = 1_000_000
    scale_to: int = 5_000_000
    sqlite_answers: int = 200_000
    seconds: float = 15.0
    web_workers: int = 4
    accounts: int = 64
    programme: str = "default"
    large_scale: float = 1.0
    browser: bool = True
    # The parts to measure (PARTS); fewer parts and a smaller scale make a quick check.
    only: frozenset[str] = frozenset()
    queue: str = field(default_factory=lambda: f"outcomes-bench-{uuid.uuid4().hex[:8]}")


class Services:
    """The `outcomes serve ...` processes of one phase, stopped together."""

    def __init__(self, cfg: Config, database_url: str, logdir: Path) -> None:
        self.cfg, self.logdir = cfg, logdir
        self.ports = {"collector": free_port(0), "dashboard": free_port(0)}
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROKER_URL": cfg.redis_url,
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "CELERY_QUEUE": cfg.queue,
            "COLLECTOR_PORT": str(self.ports["collector"]),
            "DASHBOARD_PORT": str(self.ports["dashboard"]),
            "OUTCOMES_DATA_DIR": str(logdir),
            # P6 measures how soon a submission reaches the public: an auto-release installation.
            "AUTO_RELEASE": "true",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, service: str, *, workers: int) -> int:
        """Start one service and wait until it is ready; return its port (0 for the worker)."""
        logfile = (self.logdir / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [OUTCOMES, "serve", service, "--workers", str(workers)],
            env=self.env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[service] = process
        if service == "worker":
            deadline = time.monotonic() + 60
            while b" ready." not in (self.logdir / "worker.log").read_bytes():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the worker did not start; see worker.log")
                time.sleep(0.2)
            return 0
        port = self.ports[service]
        wait_until_healthy(f"http://{HOST}:{port}/healthz", timeout=60, process=process)
        return port

    def log_count(self, service: str, needle: bytes) -> int:
        """Count a phrase in a service's log."""
        path = self.logdir / f"{service}.log"
        return path.read_bytes().count(needle) if path.exists() else 0

    def stop(self) -> None:
        """Stop every process this phase started, by its own process group."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


@contextlib.contextmanager
def services(cfg: Config, database_url: str, name: str) -> Iterator[Services]:
    """Yield a phase's services and stop them afterwards, whatever happens."""
    logdir = ROOT / "var" / "bench" / name
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("*.log"):
        old.unlink()
    running = Services(cfg, database_url, logdir)
    try:
        yield running
    finally:
        running.stop()


def put_maker(tokens: list[str], *, port: int, seed: int = 1) -> load.RequestMaker:
    """Return a maker of survey PUTs: connection c submits as member c, varied answers."""
    rng = random.Random(seed)
    bodies = [orjson.dumps({"status": "submitted", "answers": submission(rng)}) for _ in range(97)]

    def make(c: int, i: int) -> bytes:
        return load.request(
            "PUT",
            f"/api/v1/surveys/{OPEN_YEAR}",
            host=f"{HOST}:{port}",
            body=bodies[i % len(bodies)],
            headers={
                "Authorization": f"Bearer {tokens[c % len(tokens)]}",
                "Content-Type": "application/json",
            },
        )

    return make


def purge_queue(cfg: Config) -> None:
    """Drop the tasks no worker took (P1, P2 run without one) so later phases start clean."""
    redis.Redis.from_url(cfg.redis_url).delete(cfg.queue)


# -- P1 / P2: submissions -----------------------------------------------------------------


def endpoint_statements(cfg: Config, url: str, token: str) -> int:
    """Count the SQL statements one survey PUT sends (BEGIN and COMMIT aside), in process."""
    from collector import create_app
    from outcomes.config import Settings

    settings = Settings(
        database_url=url,
        broker_url=cfg.redis_url,
        queue_name=cfg.queue,
        secret_key="bench-" + uuid.uuid4().hex,
    )
    client = create_app(settings).test_client()
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT"):
            seen.append(statement)

    body = {"status": "submitted", "answers": submission(random.Random(4))}
    headers = {"Authorization": f"Bearer {token}"}
    client.put(f"/api/v1/surveys/{OPEN_YEAR}", json=body, headers=headers)  # a warm process
    # On the Engine class: the app builds engines of its own (with its timeouts) for the URL.
    event.listen(Engine, "before_cursor_execute", count)
    try:
        answer = client.put(f"/api/v1/surveys/{OPEN_YEAR}", json=body, headers=headers)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return len(seen) if answer.status_code == 200 else -answer.status_code


def submissions(
    cfg: Config, url: str, tokens: list[str], label: str, targets: dict[str, Any]
) -> list[Figure]:
    """Measure validated survey PUTs at 2 and 16 connections beside the bare SQL's ceiling."""
    results: dict[int, load.LoadResult] = {}
    statements = endpoint_statements(cfg, url, tokens[-1])
    with services(cfg, url, label) as running:
        port = running.start("collector", workers=cfg.web_workers)
        make = put_maker(tokens, port=port)
        asyncio.run(load.closed_loop(HOST, port, make, connections=16, seconds=2))  # warm up
        for conns in (2, 16):
            log(f"{label}: {conns} connections for {cfg.seconds:.0f} s")
            results[conns] = asyncio.run(
                load.closed_loop(HOST, port, make, connections=conns, seconds=cfg.seconds)
            )
        locked_in_log = running.log_count("collector", b"database is locked")
    purge_queue(cfg)
    postgres = url.startswith("postgresql")
    sql = ceiling.script("postgresql" if postgres else "sqlite", submission(random.Random(2)))
    same = (
        f"endpoint {statements} SQL statements per PUT, ceiling {ceiling.statement_count(sql) - 2}"
    )
    figures = []
    for conns, result in results.items():
        log(f"{label}: ceiling at {conns} clients")
        if postgres:
            top = ceiling.pgbench(
                url, sql, clients=conns, seconds=int(cfg.seconds), accounts=cfg.accounts
            )
            how = "pgbench, same SQL"
        else:
            top = ceiling.sqlite_loop(
                str(cfg.sqlite_path), sql, clients=conns, seconds=cfg.seconds, accounts=cfg.accounts
            )
            how = "sqlite3 loop, same SQL"
        statuses = dict(result.statuses)
        figures.append(
            Figure(
                f"{label} {conns}c",
                f"survey PUT throughput, {conns} connections",
                result.throughput,
                "req/s",
                top.tps,
                f"{how}: {top.tps:,.0f} tps, p99 {top.p99_ms:.1f} ms",
                targets["throughput"],
                _throughput_met(result, top, targets),
                f"statuses {statuses}, errors {result.errors}; {same}",
            )
        )
        figures.append(
            Figure(
                f"{label} {conns}c p50/p99",
                f"survey PUT latency p50 {result.percentile(50):.1f} ms, {conns} connections",
                result.percentile(99),
                "ms p99",
                top.p99_ms,
                f"{how} p99",
                targets["p99"] if conns == 16 else "",
                result.percentile(99) <= 25 if conns == 16 and postgres else None,
            )
        )
    figures.append(
        Figure(
            f"{label} errors",
            "non-200 answers or failed connections (all runs)"
            + ("" if postgres else ', and "database is locked" in answers and logs'),
            sum(r.errors for r in results.values())
            + (0 if postgres else sum(r.locked for r in results.values()) + locked_in_log),
            "count",
            target="0",
            met=sum(r.errors + r.locked for r in results.values()) + locked_in_log == 0,
        )
    )
    return figures


def framework_floor(cfg: Config) -> list[Figure]:
    """Measure an empty Flask PUT through the collector's own server command, same load."""
    from outcomes.config import Settings

    port = free_port(0)
    settings = Settings(database_url="sqlite://", secret_key="bench", collector_port=port)
    command = service_command("collector", settings, workers=cfg.web_workers)
    command[-1] = "bench.floorapp:app"  # the same gunicorn, worker class and threads
    logdir = ROOT / "var" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    with (logdir / "floor.log").open("wb") as logfile:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_healthy(f"http://{HOST}:{port}/healthz", timeout=60, process=process)
            make = put_maker(["floor"], port=port)
            asyncio.run(load.closed_loop(HOST, port, make, connections=16, seconds=2))  # warm up
            results = {
                conns: asyncio.run(
                    load.closed_loop(HOST, port, make, connections=conns, seconds=cfg.seconds)
                )
                for conns in (2, 16)
            }
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
    # Any PUT does at least this work, so a throughput target above it cannot be met here.
    return [
        Figure(
            f"floor {conns}c",
            f"an empty Flask PUT (body parsed, nothing else), {conns} connections",
            result.throughput,
            "req/s",
            3000,
            "P2's target",
            "P2 needs > 3,000/s",
            result.throughput > 3000,
            f"p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms, "
            f"errors {result.errors}; P1's and P2's gunicorn command and load generator",
        )
        for conns, result in results.items()
    ]


def _throughput_met(result: load.LoadResult, top: ceiling.Ceiling, targets: dict[str, Any]) -> bool:
    if "ratio" in targets:
        return result.throughput >= targets["ratio"] * top.tps
    return result.throughput >= targets["absolute"]


# -- P4 / P5: full rebuild ---------------------------------------------------------------


def rebuild_seconds(url: str, runs: int = 3) -> tuple[float, list[tuple[Any, ...]]]:
    """Return the median seconds of forced full rebuilds, and the last snapshot's cells."""
    from aggregator.build import build_snapshot, release_if_due

    engine = get_engine(url)
    times = []
    snapshot_id = None
    for _ in range(runs):
        started = time.perf_counter()
        snapshot_id = build_snapshot(engine, trigger="bench", force=True).snapshot_id
        times.append(time.perf_counter() - started)
    # Released (not timed), so that the parts reading the dashboard find figures.
    release_if_due(engine, snapshot_id=snapshot_id or 0, auto_release=True)
    v = m.IndicatorValue
    with engine.connect() as conn:
        cells = [
            tuple(row)
            for row in conn.execute(
                select(
                    v.indicator, v.period, v.breakdown, v.category, v.value, v.contributors
                ).where(v.snapshot_id == snapshot_id)
            )
        ]
    return statistics.median(times), cells


def rebuild(cfg: Config, url: str, answers: int) -> tuple[list[Figure], float]:
    """Measure P4: the full rebuild beside the best hand-written SQL for the same cells."""
    seconds, built = rebuild_seconds(url)
    engine = get_engine(url)
    hand = [hand_cells(engine, as_of=date.today()) for _ in range(3)]
    hand_seconds = statistics.median(h[0] for h in hand)
    differ = differences(hand[-1][1], built)
    uncovered = hand[-1][2]
    note = f"{len(built)} cells; hand SQL {'DISAGREES' if differ else 'agrees'} with the snapshot"
    if differ:
        note += f" in {len(differ)} cells, e.g. {'; '.join(differ[:3])}"
    if uncovered:
        note += f"; {uncovered} indicators without hand SQL ran their own SELECTs"
    figure = Figure(
        "P4",
        f"full rebuild of every indicator, {answers:,} answers",
        seconds,
        "s",
        hand_seconds,
        "one hand-written SQL for the same cells",
        "<= 1.5x",
        seconds <= 1.5 * hand_seconds,
        note,
    )
    return [figure], seconds


def scaling(cfg: Config, base_seconds: float) -> list[Figure]:
    """Measure P5: the rebuild on a data set `scale_to / answers` times larger."""
    # Beside P4's database (its name + "_scale"), so runs against other databases never share it.
    main = make_url(cfg.pg_url)
    url = main.set(database=f"{main.database}_scale").render_as_string(hide_password=False)
    prepare_database(url)
    log(f"P5: generating {cfg.scale_to:,} answers")
    data = generate(url, members=cfg.members, answers=cfg.scale_to)
    seconds, _ = rebuild_seconds(url)
    drop_database(url)
    factor = data.answers / max(1, cfg.answers)
    return [
        Figure(
            "P5",
            f"full rebuild at {data.answers:,} answers ({factor:.1f}x the records)",
            seconds,
            "s",
            base_seconds,
            f"full rebuild at {cfg.answers:,} answers (P4)",
            f"<= {1.1 * factor:.1f}x",
            seconds <= 1.1 * factor * base_seconds,
            f"generated in {data.seconds:.0f} s",
        )
    ]


# -- the large programme (--programme large) -----------------------------------------------


def large_programme(cfg: Config) -> list[Figure]:
    """Measure builds and the wide export on the largest programme's scale, then drop it."""
    main = make_url(cfg.pg_url)
    url = main.set(database=f"{main.database}_large").render_as_string(hide_password=False)
    prepare_database(url)
    try:
        return _large_figures(cfg, url)
    finally:
        drop_database(url)  # ~8 GB at scale 1: never left behind


def _large_figures(cfg: Config, url: str) -> list[Figure]:
    """Generate the large programme into url and measure it."""
    from aggregator.build import build_snapshot
    from bench.large import generate_large
    from outcomes.queue import request_aggregation

    log(f"large programme at scale {cfg.large_scale:g}")
    data = generate_large(url, scale=cfg.large_scale)
    engine = get_engine(url)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        size = conn.scalar(text("SELECT pg_database_size(current_database())"))
    figures, full = rebuild(cfg, url, data.answers)
    figures[0].key = "L build"
    figures[0].target += ", <= 120 s at scale 1"
    if cfg.large_scale >= 1:  # the time limit holds at full scale; below it, the ratio only
        figures[0].met = bool(figures[0].met) and full <= 120
    figures[0].note += f"; generated in {data.seconds:.0f} s, {size / 1e9:.1f} GB on disk"
    # One acceptance, as staff make it: the response's status and an outbox row (topic survey).
    with Session(engine) as session:
        response = session.scalars(
            select(m.SurveyResponse).where(m.SurveyResponse.status == "submitted").limit(1)
        ).one()
        response.status = "accepted"
        response.accepted_revision = response.current_revision  # its answers now count
        request_aggregation(
            session,
            reason="bench acceptance",
            requested_by=None,
            topic="survey",
            year=response.year,
        )
        session.commit()
    started = time.perf_counter()
    run = build_snapshot(engine, trigger="bench acceptance")
    incremental = time.perf_counter() - started
    with engine.connect() as conn:
        report = conn.scalar(
            select(m.Snapshot.data_quality).where(m.Snapshot.id == run.snapshot_id)
        )
    timings = report["timings"]
    steps = ("staged_answers", "data_quality", "reused")  # the rest are indicators computed
    parts = [t for code, t in timings.items() if code not in steps]
    figures.append(
        Figure(
            "L incr",
            "incremental build after one acceptance",
            incremental,
            "s",
            full,
            "the full rebuild above",
            "<= 1 s",
            incremental <= 1,
            f"years read {report['build']['survey_years']}; staging the accepted answers "
            f"{timings.get('staged_answers', 0):.2f} s, {len(parts)} indicators "
            f"{sum(parts):.2f} s, data quality {timings['data_quality']:.2f} s",
        )
    )
    with services(cfg, url, "large") as running:
        port = running.start("collector", workers=1)
        token = staff_token(url)
        floor, floor_bytes = _copy_seconds(url, WIDE_FLOOR)
        got = _stream(
            port,
            "/api/v1/exports/responses.csv?revisions=all",
            token,
            running.processes["collector"].pid,
        )
    figures.append(
        Figure(
            "L export",
            f"wide CSV of every revision: {got['rows']:,} rows, {got['bytes'] / 1e6:.0f} MB",
            got["seconds"],
            "s",
            floor,
            f"COPY of the answer rows it reads, {floor_bytes / 1e6:.0f} MB",
            "<= 3x the floor, flat memory",
            got["ok"] and got["seconds"] <= 3 * floor,
            got["note"],
        )
    )
    return figures


# -- P6: freshness ------------------------------------------------------------------------


def responding(snapshot: dict[str, Any]) -> float:
    """Return the published count of members who responded in the open reporting year."""
    for cell in snapshot["indicators"]["survey_response_rate"]["cells"]:
        if (cell["period"], cell["breakdown"], cell["category"]) == (
            str(OPEN_YEAR),
            "coverage",
            "responding",
        ):
            return float(cell["value"])
    return 0.0


async def _freshness(
    cfg: Config, collector: int, dashboard: int, tokens: list[str], probes: list[str]
) -> tuple[load.LoadResult, list[float], list[float]]:
    latest = load.request("GET", "/api/v1/snapshots/latest", host=f"{HOST}:{dashboard}")
    reader = load.Client(HOST, dashboard)
    writer = load.Client(HOST, collector)
    rng = random.Random(3)
    seen: list[float] = []
    accepted: list[float] = []  # of which the PUT itself, until the 200

    async def count() -> float:
        status, body = await reader.send(latest)
        return responding(orjson.loads(body)) if status == 200 else -1.0

    async def probe() -> None:
        await asyncio.sleep(1)
        deadline = time.perf_counter() + cfg.seconds - 2
        for token in probes:
            if time.perf_counter() > deadline:
                break
            before = await count()
            body = orjson.dumps({"status": "submitted", "answers": submission(rng)})
            put = load.request(
                "PUT",
                f"/api/v1/surveys/{OPEN_YEAR}",
                host=f"{HOST}:{collector}",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            started = time.perf_counter()
            status, _ = await writer.send(put)
            if status != 200:
                seen.append(float("inf"))
                continue
            accepted.append(time.perf_counter() - started)
            while await count() < before + 1 and time.perf_counter() - started < 10:
                await asyncio.sleep(0.01)
            seen.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)

    background = load.fixed_rate(
        HOST, collector, put_maker(tokens, port=collector), rate=200, seconds=cfg.seconds
    )
    result, _ = await asyncio.gather(background, probe())
    return result, seen, accepted


def freshness(cfg: Config, tokens: list[str], running: Services, dashboard: int) -> list[Figure]:
    """Measure P6: submit -> visible in the dashboard's latest snapshot, under 200 submissions/s."""
    engine = get_engine(cfg.pg_url)
    with engine.connect() as conn:
        fresh = list(
            conn.scalars(
                select(m.Member.id)
                .where(
                    m.Member.id > cfg.accounts,
                    m.Member.id.not_in(
                        select(m.SurveyResponse.member_id).where(m.SurveyResponse.year == OPEN_YEAR)
                    ),
                )
                .order_by(m.Member.id)
                .limit(200)
            )
        )
    probes = add_member_tokens(cfg.pg_url, fresh)
    with engine.connect() as conn:
        released = conn.scalar(select(func.count()).where(m.Snapshot.status == "released"))
    if not released:  # a live system has one (P4 made it when it ran)
        from aggregator.build import build_snapshot, release_if_due

        built = build_snapshot(engine, trigger="bench", force=True)
        release_if_due(engine, snapshot_id=built.snapshot_id or 0, auto_release=True)
    collector = running.start("collector", workers=cfg.web_workers)
    running.start("worker", workers=2)
    # Let the worker publish a snapshot of everything submitted so far before measuring. The
    # background members' responses start accepted: their first amendment names topic "survey",
    # whose run recomputes every survey indicator, so each member amends once before (P1 did).
    asyncio.run(
        load.fixed_rate(HOST, collector, put_maker(tokens, port=collector), rate=64, seconds=2)
    )
    pending = select(func.count()).where(m.Outbox.processed_at.is_(None))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.scalar(pending):
                break
        time.sleep(0.5)
    time.sleep(1)
    log(f"P6: 200 submissions/s for {cfg.seconds:.0f} s with freshness probes")
    result, seen, accepted = asyncio.run(_freshness(cfg, collector, dashboard, tokens, probes))
    ordered = sorted(seen) or [float("nan")]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    with engine.connect() as conn:
        snapshots = conn.scalar(select(func.count()).select_from(m.Snapshot))
    return [
        Figure(
            "P6",
            f"submit -> visible in the published snapshot, p95 of {len(seen)} probes "
            f"(median {statistics.median(ordered):.2f} s)",
            p95,
            "s",
            1 / 200,
            "the interval between submissions at 200/s",
            "p95 <= 1 s",
            p95 <= 1.0,
            f"background {result.throughput:,.0f} req/s achieved ({result.skipped} not sent in "
            f"time), errors {result.errors}, "
            f"p99 {result.percentile(99):.0f} ms; {snapshots} snapshots in the database; "
            f"probe PUTs took {statistics.median(accepted or [float('nan')]):.2f} s (median) of it",
        )
    ]


# -- P9 / P10 / export: dashboard ---------------------------------------------------------


async def _timings(port: int, path: str, n: int, body: bytes = b"") -> list[float]:
    """Time n requests on one connection: a GET, or a POST of a JSON body."""
    client = load.Client(HOST, port)
    headers = {"Content-Type": "application/json", "Accept-Encoding": "br, gzip"} if body else {}
    raw = load.request(
        "POST" if body else "GET", path, host=f"{HOST}:{port}", body=body, headers=headers
    )
    times = []
    for _ in range(n):
        started = time.perf_counter()
        status, _ = await client.send(raw)
        if status != 200:
            raise RuntimeError(f"{'POST' if body else 'GET'} {path} answered {status}")
        times.append(time.perf_counter() - started)
    client.close()
    return times


# What the browser posts when it loads / : the page callback of the address.
PAGE_CALLBACK = orjson.dumps(
    {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [
            {"id": "url", "property": "pathname", "value": "/"},
            {"id": "url", "property": "search", "value": ""},
        ],
        "changedPropIds": ["url.pathname", "url.search"],
        "state": [],
    }
)


def p95_ms(times: list[float]) -> float:
    """Return the 95th percentile of durations, in milliseconds."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)] * 1000


def dashboard_figures(cfg: Config, port: int) -> list[Figure]:
    """Measure P9: the data API, the page layout and the page callback of the latest snapshot."""
    from dashboard.callbacks import render

    floor = p95_ms(asyncio.run(_timings(port, "/healthz", 200)))
    figures = []
    for path, what, body in (
        ("/api/v1/snapshots/latest", "data API (latest snapshot, JSON)", b""),
        ("/_dash-layout", "page layout (per page load)", b""),
        ("/_dash-update-component", "page callback render('/') (per page load)", PAGE_CALLBACK),
    ):
        times = asyncio.run(_timings(port, path, 300, body))
        figures.append(
            Figure(
                "P9",
                f"{what}: {'POST' if body else 'GET'} {path} through gunicorn",
                p95_ms(times),
                "ms p95",
                floor,
                "GET /healthz p95, same server",
                "p95 <= 15 ms",
                p95_ms(times) <= 15,
            )
        )
    inproc = []
    for _ in range(300):
        started = time.perf_counter()
        render(cfg.pg_url, "/", "")
        inproc.append(time.perf_counter() - started)
    figures.append(
        Figure(
            "P9",
            "page callback render('/') in process",
            p95_ms(inproc),
            "ms p95",
            target="p95 <= 15 ms",
            met=p95_ms(inproc) <= 15,
        )
    )
    # The first render of a view builds its components; later ones reuse them (cached by view).
    from dashboard.data import load_snapshot

    snapshot = load_snapshot(cfg.pg_url)
    countries = sorted({c["category"] for c in snapshot.cells if c["breakdown"] == "country"})
    first = []
    for country in countries:
        started = time.perf_counter()
        render(cfg.pg_url, "/", f"?country={country}")
        first.append(time.perf_counter() - started)
    figures.append(
        Figure(
            "P9",
            f"render('/?country=C') in process, the first time for each of {len(first)} countries",
            p95_ms(first),
            "ms p95",
            target="(uncached view)",
        )
    )
    return figures


def _page_weight(page: Any, base: str) -> tuple[int, int]:
    """Load / once and return its responses' count and gzipped bytes, callbacks' JSON included."""
    import gzip

    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(base + "/")
    page.locator("#map-people .geolayer").wait_for(state="attached", timeout=60000)
    page.wait_for_load_state("networkidle")
    seen, weight = set(), 0
    for response in responses:
        key = (response.request.method, response.url, response.request.post_data)
        # A file fetched twice (two maps, one outline) crosses the network once.
        if response.url.startswith(base) and key not in seen:
            seen.add(key)
            weight += len(gzip.compress(response.body(), 6))
    return len(seen), weight


def browser_figures(port: int) -> list[Figure]:
    """Measure P10: first contentful paint in headless Chromium and the page's gzipped weight."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists():
        return [Figure("P10", f"no Chromium at {chromium}: not measured", 0, "", met=None)]
    fcp = "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
    base = f"http://{HOST}:{port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        count, weight = _page_weight(page, base)
        page.close()
        paints, floors = [], []
        for _ in range(5):
            page = browser.new_page()
            page.goto(base + "/")
            page.locator("[id^=tile-value-]").first.wait_for(timeout=15000)
            paints.append(page.evaluate(fcp))
            page.close()
            page = browser.new_page()
            page.goto(base + "/healthz")
            # The load event can come before the paint is recorded (the floor once read -1).
            # Polled from here: wait_for_function evaluates a string in the page, which the
            # dashboard's Content-Security-Policy (no 'unsafe-eval') refuses.
            deadline = time.monotonic() + 5
            while (floor := page.evaluate(fcp)) < 0 and time.monotonic() < deadline:
                page.wait_for_timeout(20)
            floors.append(floor)
            page.close()
        browser.close()
    paint = statistics.median(paints)
    return [
        Figure(
            "P10",
            "first contentful paint of / in headless Chromium (median of 5)",
            paint,
            "ms",
            statistics.median(floors),
            "first paint of /healthz, same browser",
            "<= 1000 ms",
            0 <= paint <= 1000,
        ),
        Figure(
            "P10",
            f"page weight: {count} responses of one load of /, each gzipped",
            weight / 1e6,
            "MB",
            target="<= 1.2 MB",
            met=weight <= 1.2e6,
        ),
    ]


def _peak_rss_kb(master: int) -> int:
    """Return the largest peak RSS (VmHWM) among a gunicorn master's worker processes."""
    return max(_worker_peaks_kb(master).values(), default=0)


def _worker_peaks_kb(master: int) -> dict[int, int]:
    """Return the peak RSS (VmHWM, kB) of each of a gunicorn master's worker processes."""
    peaks = {}
    for task in Path(f"/proc/{master}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[int(child)] = int(line.split()[1])
    return peaks


def export_figures(cfg: Config, port: int, master: int) -> list[Figure]:
    """Measure the dashboard's snapshot CSV: time beside COPY, and its workers' peak memory."""
    with get_engine(cfg.pg_url).connect() as conn:
        snapshot = conn.scalar(
            select(func.max(m.Snapshot.id)).where(m.Snapshot.status == "released")
        )
    if snapshot is None:
        log("export: no published snapshot (run P4 or P6 too); the snapshot CSV is skipped")
        return []
    before = _peak_rss_kb(master)
    times = asyncio.run(_timings(port, "/api/v1/snapshots/latest?format=csv", 50))
    after = _peak_rss_kb(master)
    cells_seconds, _ = _copy_seconds(
        cfg.pg_url, f"SELECT * FROM indicator_value WHERE snapshot_id = {int(snapshot or 0)}"
    )
    return [
        Figure(
            "Export",
            "snapshot CSV from the dashboard (GET /api/v1/snapshots/latest?format=csv), median",
            statistics.median(times) * 1000,
            "ms",
            cells_seconds * 1000,
            "COPY of the same cells to CSV",
            "flat memory",
            None,
            f"worker peak RSS {before / 1024:.0f} -> {after / 1024:.0f} MB over 50 exports",
        )
    ]


def _copy_seconds(url: str, query: str) -> tuple[float, int]:
    """Return the seconds and bytes of PostgreSQL COPY of a query to CSV through psycopg."""
    raw = get_engine(url).raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        started = time.perf_counter()
        size = 0
        with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
            for chunk in copy:
                size += len(chunk)
        return time.perf_counter() - started, size
    finally:
        raw.close()


def staff_token(url: str) -> str:
    """Add a staff account with an API token and return the token."""
    from outcomes.accounts import create_token, create_user

    with get_engine(url).begin() as conn, Session(bind=conn) as session:
        user = create_user(
            session,
            email=f"bench-staff-{uuid.uuid4().hex[:8]}@example.org",
            password=uuid.uuid4().hex,
            role="staff",
        )
        token = create_token(session, user=user, name="bench")
        session.flush()
    return token


def _stream(port: int, path: str, token: str, master: int) -> dict[str, Any]:
    """GET a streamed export through gunicorn; return its time, size, rows and worker growth."""
    import http.client

    before = _worker_peaks_kb(master)
    started = time.perf_counter()
    client = http.client.HTTPConnection(HOST, port, timeout=600)
    client.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    answer = client.getresponse()
    size = lines = 0
    while chunk := answer.read(1 << 16):
        size += len(chunk)
        lines += chunk.count(b"\n")
    client.close()
    seconds = time.perf_counter() - started
    after = _worker_peaks_kb(master)
    # The worker that served the export is the one whose peak grew the most.
    pid = max(after, key=lambda p: after[p] - before.get(p, after[p]))
    grew = (after[pid] - before.get(pid, after[pid])) / 1024
    return {
        "seconds": seconds,
        "bytes": size,
        "rows": lines - 1,
        "ok": answer.status == 200 and grew < 16,
        "note": f"status {answer.status}; collector worker peak RSS "
        f"{before.get(pid, 0) / 1024:.0f} -> {after[pid] / 1024:.0f} MB while streaming",
    }


# The rows the wide export reads: the chosen revisions' typed answers, beside the revision.
WIDE_FLOOR = (
    "SELECT a.revision_id, a.question_key, a.value_number, a.value_text, v.number, v.status, "
    "v.created_at FROM survey_answer a JOIN survey_revision v ON v.id = a.revision_id "
    "JOIN survey_response r ON r.id = v.response_id"
)
WIDE_ACCEPTED = " WHERE r.status = 'accepted' AND v.number = r.current_revision"


def answers_export(cfg: Config, port: int, master: int) -> list[Figure]:
    """Measure the staff CSVs of survey answers, long and wide, beside COPY of what they read."""
    token = staff_token(cfg.pg_url)
    floor, floor_bytes = _copy_seconds(cfg.pg_url, "SELECT * FROM survey_answer")
    figures = []
    for revisions, what in (("all", "every revision"), ("accepted", "accepted, current")):
        got = _stream(port, f"/api/v1/exports/answers.csv?revisions={revisions}", token, master)
        figures.append(
            Figure(
                "Export",
                f"survey answers CSV ({what}): {got['rows']:,} rows, {got['bytes'] / 1e6:.0f} MB, "
                "GET /api/v1/exports/answers.csv through gunicorn",
                got["seconds"],
                "s",
                floor if revisions == "all" else None,
                f"COPY of survey_answer to CSV, {floor_bytes / 1e6:.0f} MB",
                "flat memory (peak RSS +< 16 MB)",
                got["ok"],
                f"{revisions}: {got['note']}",
            )
        )
    for revisions, what in (("all", "every revision"), ("accepted", "accepted, current")):
        wide_floor, wide_bytes = _copy_seconds(
            cfg.pg_url, WIDE_FLOOR + (WIDE_ACCEPTED if revisions == "accepted" else "")
        )
        path = f"/api/v1/exports/responses.csv?revisions={revisions}&values=labels"
        got = _stream(port, path, token, master)
        ratio = got["seconds"] / wide_floor
        figures.append(
            Figure(
                "Export wide",
                f"survey responses CSV, a row each ({what}): {got['rows']:,} rows, "
                f"{got['bytes'] / 1e6:.0f} MB, GET /api/v1/exports/responses.csv",
                got["seconds"],
                "s",
                wide_floor,
                f"COPY of the answer rows it reads, {wide_bytes / 1e6:.0f} MB",
                "<= 3x the floor, flat memory",
                got["ok"] and ratio <= 3,
                f"wide {revisions}: {got['note']}",
            )
        )
    return figures


# -- the run ------------------------------------------------------------------------------


def machine(cfg: Config) -> dict[str, Any]:
    """Describe the machine and the versions the figures were measured with."""
    import gunicorn
    import sqlalchemy

    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    # The server's admin database: the bench's own is not made yet for --programme large.
    admin = make_url(cfg.pg_url).set(database="postgres").render_as_string(hide_password=False)
    with get_engine(admin).connect() as conn:
        pg = conn.scalar(text("SHOW server_version"))
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(int(meminfo) / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": pg,
        "sqlite": sqlite3.sqlite_version,
        "redis": redis.Redis.from_url(cfg.redis_url).info("server")["redis_version"],
        "gunicorn": gunicorn.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "kernel": platform.release(),
    }


def table(figures: list[Figure]) -> str:
    """Render the figures as one plain-text table."""
    rows = [("id", "figure", "measured", "baseline (same run)", "ratio", "target", "met")]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
        baseline = f"{f.baseline:,.4g} ({f.baseline_what})" if f.baseline else f.baseline_what
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append((f.key, f.what, f"{f.value:,.4g} {f.unit}", baseline, ratio, f.target, met))
    widths = [min(70, max(len(r[i]) for r in rows)) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell[: widths[i]].ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    notes = [f"  {f.key}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["notes:", *notes] if notes else []))


def run(cfg: Config) -> dict[str, Any]:
    """Run the chosen measurements in order and return the results."""
    started = time.perf_counter()
    figures: list[Figure] = []
    info: dict[str, Any] = {}
    wanted = cfg.only or frozenset(PARTS)
    if cfg.programme == "large":
        info["machine"] = machine(cfg)
        figures += large_programme(cfg)
        wanted = frozenset()  # the large programme is measured on its own
        info["data_set"] = {"programme": "large", "scale": cfg.large_scale}

    if wanted:
        log(f"P4 data set: {cfg.members:,} members, {cfg.answers:,} answers on PostgreSQL")
        prepare_database(cfg.pg_url)
        data = generate(cfg.pg_url, members=cfg.members, answers=cfg.answers, accounts=cfg.accounts)
        info["machine"] = machine(cfg)
        info["data_set"] = {"rows": data.rows, "load_seconds": round(data.seconds, 1)}
    if wanted & {"P4", "P5"}:
        part, base_seconds = rebuild(cfg, cfg.pg_url, data.answers)
        figures += part
        if cfg.scale_to and "P5" in wanted:
            figures += scaling(cfg, base_seconds)

    if "P1" in wanted:
        log("P1: submissions on PostgreSQL")
        figures += submissions(
            cfg,
            cfg.pg_url,
            data.tokens,
            "P1",
            {"ratio": 0.6, "throughput": ">= 60% of ceiling", "p99": "p99 <= 25 ms"},
        )

    if wanted & {"P6", "P9", "P10", "export"}:
        with services(cfg, cfg.pg_url, "P6") as running:
            dashboard = running.start("dashboard", workers=2)
            if "P6" in wanted:
                figures += freshness(cfg, data.tokens, running, dashboard)
                for service in ("collector", "worker"):
                    process = running.processes.pop(service)
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=30)
            log("P9, P10, export: the dashboard")
            if "P9" in wanted:
                figures += dashboard_figures(cfg, dashboard)
            if cfg.browser and "P10" in wanted:
                figures += browser_figures(dashboard)
            if "export" in wanted:
                figures += export_figures(cfg, dashboard, running.processes["dashboard"].pid)
                collector = running.start("collector", workers=cfg.web_workers)
                figures += answers_export(cfg, collector, running.processes["collector"].pid)

    if "P2" in wanted:
        log("P2: submissions on SQLite")
        sqlite_url = f"sqlite:///{cfg.sqlite_path}"
        prepare_database(sqlite_url)
        lite = generate(
            sqlite_url, members=cfg.members, answers=cfg.sqlite_answers, accounts=cfg.accounts
        )
        figures += submissions(
            cfg,
            sqlite_url,
            lite.tokens,
            "P2",
            {"absolute": 3000, "throughput": ">= 3,000/s", "p99": ""},
        )
    if wanted & {"P1", "P2"}:
        log("floor: an empty Flask PUT through the same server")
        figures += framework_floor(cfg)
    purge_queue(cfg)
    info["machine"]["load_average_at_end"] = os.getloadavg()
    info["seconds"] = round(time.perf_counter() - started, 1)
    info["config"] = {k: str(v) for k, v in asdict(cfg).items()}
    info["figures"] = [{**asdict(f), "ratio": f.ratio} for f in figures]
    info["table"] = table(figures)
    return info


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/outcomes_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument(
        "--scale-to", type=int, default=5_000_000, help="P5's larger data set (0 skips P5)"
    )
    parser.add_argument("--sqlite-answers", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=15, help="length of each load run")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--no-browser", action="store_true", help="skip P10")
    parser.add_argument(
        "--only",
        type=lambda text: frozenset(text.split(",")),
        default=frozenset(),
        help=f"comma-separated parts to measure, of {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--programme",
        choices=("default", "large"),
        default="default",
        help="large: 250k certificates, 150k facilities, 10k members, 1M revisions, 50M answers, "
        "5M trainings (bench/large.py), measured on its own (build, incremental, wide export)",
    )
    parser.add_argument(
        "--large-scale", type=float, default=1.0, help="fraction of the large programme to load"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args(argv)
    cfg = Config(
        pg_url=args.pg_url,
        redis_url=args.redis_url,
        sqlite_path=ROOT / "var" / "bench" / "bench.db",
        members=args.members,
        answers=args.answers,
        scale_to=args.scale_to,
        sqlite_answers=args.sqlite_answers,
        seconds=args.seconds,
        web_workers=args.web_workers,
        browser=not args.no_browser,
        only=args.only,
        programme=args.programme,
        large_scale=args.large_scale,
    )
    if unknown := args.only - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    results = run(cfg)
    args.out.write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    print(results["table"])
    print(f"\n{results['seconds']:.0f} s; machine: {results['machine']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
