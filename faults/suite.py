"""The faults, and the runs that inject each at random points and check the invariants after."""

from __future__ import annotations

import random
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import select, text

from aggregator.build import FINISHED, PUBLISH_LOCK_KEY
from faults.data import load_scaled, make_members_with_tokens, make_staff_token
from faults.invariants import INVARIANTS, Mark, check, wait_recovered
from faults.load import ClientLog, Load
from faults.stack import PrivatePostgres, Service, Stack, machine_postgres_schema
from outcomes.db import get_engine, session_scope
from outcomes.migrate import upgrade
from outcomes.models import IndicatorValue, Snapshot


@dataclass
class Env:
    """What a fault acts on."""

    stack: Stack
    load: Load
    rng: random.Random
    postgres: PrivatePostgres | None = None

    @property
    def url(self) -> str:
        return self.stack.settings.database_url


# Finding the run in progress -----------------------------------------------------------------


# What the holder of the publish lock last ran tells how far its run got (pg_stat_activity.query).
PHASES = {
    "any": (),
    "build": ("INSERT INTO indicator_value",),
    "publish": (
        "UPDATE indicator_value",
        "SELECT indicator_value.indicator",
        "UPDATE snapshot",
        "UPDATE outbox",
    ),
}


@dataclass(frozen=True)
class Holder:
    """The worker, pool child and last statement of the run that holds the publish lock."""

    worker: Service
    child: psutil.Process
    query: str


def lock_holder(env: Env, phase: str = "any") -> Holder | None:
    """Return who holds the publish lock now, if its run is in the phase (PostgreSQL only)."""
    with get_engine(env.url).connect() as conn:
        # The two-key lock shows its keys as classid and objid; the schema's hash picks ours.
        queries = dict(
            conn.execute(
                text(
                    "SELECT a.client_port, a.query FROM pg_locks l"
                    " JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE l.locktype = 'advisory' AND l.classid = :key AND l.objsubid = 2"
                    " AND l.objid = hashtext(current_schema())::oid AND l.granted"
                    " AND l.database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ),
                {"key": PUBLISH_LOCK_KEY},
            ).all()
        )
    # Match the phase before the (slower) search for the process, to poll the short phases.
    queries = {
        port: query
        for port, query in queries.items()
        if not PHASES[phase] or (query or "").lstrip().startswith(PHASES[phase])
    }
    if not queries:
        return None
    for worker in env.stack.workers:
        for child in [psutil.Process(worker.pid), *worker.children()]:
            try:
                ports = {c.laddr.port for c in child.net_connections("tcp") if c.laddr}
            except psutil.NoSuchProcess:
                continue
            for port in ports & queries.keys():
                return Holder(worker, child, queries[port] or "")
    return None


class NoRun(RuntimeError):
    """No aggregation started in time (another user of the database may hold the lock)."""


def wait_for_run(env: Env, phase: str = "build", timeout: float = 90) -> Holder:
    """Wait until one of our workers' runs is in a phase, asking for runs as needed."""
    deadline = time.monotonic() + timeout
    asked = 0.0
    while time.monotonic() < deadline:
        found = lock_holder(env, phase)
        if found is not None:
            return found
        if time.monotonic() - asked > 2:
            threading.Thread(target=env.load.trigger, daemon=True).start()
            asked = time.monotonic()
        time.sleep(0.002)
    raise NoRun(f"no run reached its {phase} phase within {timeout:.0f} s")


def _same_run(env: Env, before: Holder) -> bool:
    """Tell whether the pool child that held the lock before still holds it."""
    now = lock_holder(env)
    return now is not None and now.child.pid == before.child.pid


def median_build_seconds(env: Env) -> float:
    """Return how long recent runs took, from what the snapshots recorded."""
    with get_engine(env.url).connect() as conn:
        rows = conn.scalars(
            select(Snapshot.data_quality)
            .where(Snapshot.status.in_(FINISHED))
            .order_by(Snapshot.id.desc())
            .limit(20)
        ).all()
    seconds = [r.get("build_seconds", 0.3) for r in rows if r]
    return statistics.median(seconds) if seconds else 0.3


# The faults ----------------------------------------------------------------------------------


def _mid_run_on_postgres(env: Env) -> str:
    """On PostgreSQL, half the time wait until a run is under way; say when the fault hits."""
    if env.url.startswith("postgresql") and env.rng.random() < 0.5:
        wait_for_run(env)
        return "mid-run"
    return "a random moment"


def f1_kill_pool_child(env: Env) -> str:
    """SIGKILL the Celery pool child mid-aggregation; its parent forks a new one."""
    run = wait_for_run(env)
    time.sleep(env.rng.uniform(0, 0.3) * median_build_seconds(env))
    held = _same_run(env, run)
    run.child.send_signal(signal.SIGKILL)
    return "killed mid-run" if held else "killed just after its run"


def f2_kill_worker(env: Env) -> str:
    """SIGKILL a whole worker (main process and pool child), then start it again."""
    where = _mid_run_on_postgres(env)
    found = lock_holder(env) if where == "mid-run" else None
    worker = found.worker if found else env.rng.choice(env.stack.workers)
    worker.kill()
    time.sleep(env.rng.uniform(1, 3))
    env.stack.restart(worker)
    return f"killed {worker.name} at {where}"


def f3_stop_worker(env: Env) -> str:
    """SIGSTOP the worker holding the publish lock past the visibility timeout, then SIGCONT."""
    worker = wait_for_run(env).worker
    pause = env.stack.settings.aggregation_visibility_timeout + env.rng.uniform(2, 8)
    worker.signal_group(signal.SIGSTOP)
    time.sleep(pause)
    worker.signal_group(signal.SIGCONT)
    return f"stopped {worker.name} for {pause:.0f} s"


def f4_stop_redis(env: Env) -> str:
    """Shut Redis down for several seconds (it keeps nothing), then start it on the same port."""
    down = env.rng.uniform(3, 10)
    where = _mid_run_on_postgres(env)
    env.stack.redis.service.stop()
    time.sleep(down)
    env.stack.redis.start()
    return f"down {down:.1f} s from {where}"


def f5_kill_redis(env: Env) -> str:
    """SIGKILL Redis and start it again a moment later."""
    where = _mid_run_on_postgres(env)
    env.stack.redis.service.kill()
    time.sleep(env.rng.uniform(0.5, 2))
    env.stack.redis.start()
    return f"killed at {where}, restarted"


def f6_restart_postgres(env: Env) -> str:
    """Restart the private PostgreSQL cluster, fast or immediate."""
    assert env.postgres is not None
    mode = env.rng.choice(("fast", "immediate"))
    where = _mid_run_on_postgres(env)
    env.postgres.pg_ctl("restart", mode=mode)
    return f"restart -m {mode} at {where}"


def f7_kill_gunicorn_worker(env: Env) -> str:
    """SIGKILL one gunicorn worker of the collector; the arbiter forks a new one."""
    children = env.stack.collector.children()
    victim = env.rng.choice(children)
    victim.send_signal(signal.SIGKILL)
    return f"killed gunicorn worker {victim.pid} of {len(children)}"


def f8_kill_during_publish(env: Env) -> str:
    """SIGKILL the aggregator (the whole worker) while it publishes: suppression to commit."""
    run = wait_for_run(env, "publish")
    run.worker.kill()
    env.stack.restart(run.worker)
    return f"killed at: {run.query.split(' SET ')[0].split(',')[0][:40]}"


def f9_trigger_storm(env: Env) -> str:
    """Fire many staff triggers at once."""
    barrier = threading.Barrier(40)

    def fire() -> None:
        barrier.wait()
        env.load.trigger()

    threads = [threading.Thread(target=fire) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return "40 concurrent triggers"


def f10_two_writers(env: Env) -> str:
    """On SQLite, two workers and the collector write at once; one worker is SIGKILLed."""
    return f2_kill_worker(env)


@dataclass(frozen=True)
class Fault:
    """One kind of fault and the deployment it runs on."""

    code: str
    title: str
    deployment: str  # "postgres" (machine's, private schema), "private-postgres" or "sqlite"
    inject: Callable[[Env], str]


FAULTS = {
    f.code: f
    for f in (
        Fault("F1", "SIGKILL the pool child mid-aggregation", "postgres", f1_kill_pool_child),
        Fault("F2", "SIGKILL the whole worker, restart it", "postgres", f2_kill_worker),
        Fault(
            "F3", "SIGSTOP the lock holder past the visibility timeout", "postgres", f3_stop_worker
        ),
        Fault("F4", "stop Redis for seconds", "postgres", f4_stop_redis),
        Fault("F5", "kill -9 Redis, restart it", "postgres", f5_kill_redis),
        Fault(
            "F6", "restart PostgreSQL (fast / immediate)", "private-postgres", f6_restart_postgres
        ),
        Fault("F7", "SIGKILL a gunicorn worker", "postgres", f7_kill_gunicorn_worker),
        Fault("F8", "SIGKILL the aggregator during publish", "postgres", f8_kill_during_publish),
        Fault("F9", "many concurrent staff triggers", "postgres", f9_trigger_storm),
        Fault("F10", "embedded SQLite, two writers, a worker killed", "sqlite", f10_two_writers),
    )
}


# Running -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one fault did over its rounds."""

    fault: Fault
    rounds: int = 0
    acks: int = 0
    retries: int = 0
    failed_runs: int = 0
    skipped: int = 0
    seconds: float = 0.0
    recovery: list[float] = field(default_factory=list)
    results: dict[str, list[tuple[bool, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def held(self, code: str) -> bool:
        """Tell whether an invariant held in every round."""
        return (
            self.skipped < self.rounds
            and bool(self.results.get(code))
            and all(ok for ok, _ in self.results[code])
        )


@contextmanager
def deployment(
    kind: str, work: Path, *, scale: int, members: int, workers: int, sweep_seconds: int
) -> Iterator[tuple[Stack, Load, ClientLog, PrivatePostgres | None]]:
    """Start a database, the scaled data set, accounts and the stack; stop it all afterwards."""
    with ExitStack() as cleanup:
        postgres = None
        if kind == "postgres":
            url = cleanup.enter_context(machine_postgres_schema())
        elif kind == "private-postgres":
            postgres = PrivatePostgres()
            cleanup.callback(postgres.remove)
            postgres.start()
            url = postgres.url
        else:
            url = f"sqlite:///{work / 'outcomes.db'}"
        upgrade(url)
        with session_scope(url) as session:
            load_scaled(session, scale=scale)
            accounts = make_members_with_tokens(session, count=members)
            staff = make_staff_token(session)
        cleanup.callback(get_engine(url).dispose)
        stack = Stack.create(url, work, sweep_seconds=sweep_seconds)
        cleanup.callback(stack.stop)
        stack.start(workers=workers)
        log = ClientLog(work / "client-log.jsonl")
        load = Load(
            stack.collector_url,
            members=accounts,
            staff=staff,
            log=log,
            database_url=url,
            rng=random.Random(0),
        )
        first, _ = wait_recovered(load, url, time.monotonic())
        if first is None:
            raise RuntimeError(f"the {kind} stack built no first snapshot; logs in {work}")
        with get_engine(url).connect() as conn:
            load.expected_indicators = set(
                conn.scalars(select(IndicatorValue.indicator).distinct())
            )
        yield stack, load, log, postgres


def run_fault(fault: Fault, env: Env, log: ClientLog, *, rounds: int, busy: float) -> Outcome:
    """Inject a fault at `rounds` random points under load, checking every invariant after each."""
    outcome = Outcome(fault)
    started = time.monotonic()
    for _ in range(rounds):
        mark = Mark.now(env.url, log)
        env.load.start()
        time.sleep(env.rng.uniform(0.5, busy))
        try:
            outcome.notes.append(fault.inject(env))
        except NoRun as error:
            outcome.notes.append(f"not injected: {error}")
            outcome.skipped += 1
        ended = time.monotonic()
        time.sleep(env.rng.uniform(1, busy))  # the load goes on past the fault
        env.load.stop()
        recovery, note = wait_recovered(env.load, env.url, ended)
        if recovery is not None:
            outcome.recovery.append(recovery)
        results = check(
            env.url,
            log,
            mark,
            recovery=recovery,
            recovery_note=note,
            threshold=env.stack.settings.suppression_threshold,
        )
        for code, result in results.items():
            outcome.results.setdefault(code, []).append(result)
        outcome.acks += len(log.of("ack", mark.log))
        outcome.retries += len(log.of("retry", mark.log))
        outcome.failed_runs += failed_runs(env.url, mark)
        outcome.rounds += 1
    outcome.seconds = time.monotonic() - started
    return outcome


def run_suite(
    codes: list[str],
    *,
    seed: int,
    rounds: int,
    scale: int,
    busy: float = 4.0,
    members: int = 12,
    sweep_seconds: int = 5,
    work: Path | None = None,
    only_on: str | None = None,
    report: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run the chosen faults, grouped by the deployment they need (or all on `only_on`)."""
    work = work or Path(tempfile.mkdtemp(prefix="outcomes-faults-"))
    outcomes = []
    for kind in ("postgres", "private-postgres", "sqlite"):
        chosen = [FAULTS[c] for c in codes if (only_on or FAULTS[c].deployment) == kind]
        if not chosen:
            continue
        where = work / kind
        where.mkdir(parents=True, exist_ok=True)
        # SQLite builds hold the one write lock: a quarter of the data keeps runs about as long.
        size = scale if kind != "sqlite" else max(1, scale // 4)
        report(f"starting the {kind} deployment (scale {size}) in {where}")
        with deployment(
            kind,
            where,
            scale=size,
            members=members,
            workers=2,
            sweep_seconds=sweep_seconds,
        ) as (stack, load, log, pg):
            for fault in chosen:
                rng = random.Random(f"{seed}-{fault.code}")
                env = Env(stack=stack, load=load, rng=rng, postgres=pg)
                load.rng = random.Random(rng.random())
                report(f"{fault.code} {fault.title}: {rounds} rounds")
                outcome = run_fault(fault, env, log, rounds=rounds, busy=busy)
                report(summary_line(outcome))
                report("  where: " + "; ".join(outcome.notes))
                outcomes.append(outcome)
    return outcomes


def failed_runs(database_url: str, mark: Mark) -> int:
    """Count the runs recorded as failed since the mark."""
    with get_engine(database_url).connect() as conn:
        return len(
            conn.scalars(
                select(Snapshot.id).where(Snapshot.id > mark.snapshot, Snapshot.status == "failed")
            ).all()
        )


def summary_line(outcome: Outcome) -> str:
    """Return one row of the summary table."""
    marks = " | ".join("pass" if outcome.held(c) else "FAIL" for c in INVARIANTS)
    worst = f"{max(outcome.recovery):.1f}" if outcome.recovery else "-"
    fault = f"{outcome.fault.code} {outcome.fault.title}"
    return (
        f"| {fault} | {outcome.rounds - outcome.skipped} | {outcome.acks} | {outcome.retries}"
        f" | {outcome.failed_runs} | {marks}"
        f" | {worst} | {outcome.seconds:.0f} |"
    )


def summary_table(outcomes: list[Outcome]) -> str:
    """Return the fault x invariant table in Markdown."""
    head = (
        "| fault | faults injected | acks | client retries | failed runs | "
        + " | ".join(INVARIANTS)
        + " | worst recovery s | run s |"
    )
    rule = "|---|---:|---:|---:|---:|" + "---|" * len(INVARIANTS) + "---:|---:|"
    return "\n".join([head, rule, *(summary_line(o) for o in outcomes)])
