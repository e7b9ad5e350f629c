"""`outcomes run` (what `make run` starts) on a fresh folder: demo snapshot, a survey, Ctrl-C."""

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from outcomes.db import get_engine
from outcomes.models import Snapshot
from outcomes.runner import free_port
from tests.slow_clients import healthz_answers, slow_clients

OUTCOMES = str(Path(sys.executable).parent / "outcomes")


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.load(answer)
    except OSError:
        return None


def put_json(url: str, body: dict, token: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def live_process_groups() -> set[int]:
    """Return the process groups with a process that is not a zombie."""
    listing = subprocess.run(
        ["ps", "-eo", "pgid=,stat="], capture_output=True, text=True, check=True
    )
    rows = [line.split() for line in listing.stdout.splitlines() if line.strip()]
    return {int(group) for group, state in rows if not state.startswith("Z")}


def children_of(pid: int) -> set[int]:
    listing = subprocess.run(
        ["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True
    )
    pairs = [tuple(map(int, line.split())) for line in listing.stdout.splitlines() if line.strip()]
    return {child for child, parent in pairs if parent == pid}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Start `outcomes run` once for this module; yield its process, output lines and URLs."""
    tmp_path = tmp_path_factory.mktemp("run")
    (tmp_path / "home").mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "BROKER_URL", "REDIS_URL", "SECRET_KEY", "XDG_RUNTIME_DIR"}
    }
    env.update(
        HOME=str(tmp_path / "home"),
        COLLECTOR_PORT=str(free_port(0)),
        DASHBOARD_PORT=str(free_port(0)),
        OUTCOMES_DATA_DIR=str(tmp_path / "var"),
    )
    run = subprocess.Popen(
        [OUTCOMES, "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("member token" in line for line in lines):
            line = run.stdout.readline()
            assert line, "outcomes run exited before printing its URLs"
            lines.append(line)
        yield SimpleNamespace(
            process=run,
            lines=lines,
            env=env,
            data_dir=tmp_path / "var",
            home=tmp_path / "home",
            collector=f"http://127.0.0.1:{env['COLLECTOR_PORT']}",
            dashboard=f"http://127.0.0.1:{env['DASHBOARD_PORT']}",
        )
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            run.wait(timeout=60)


def test_healthz_keeps_answering_while_slow_clients_trickle_their_headers(stack):
    # The attack was two such clients; sync workers answered 2 of 15 probes here.
    ports = (int(stack.env["COLLECTOR_PORT"]), int(stack.env["DASHBOARD_PORT"]))
    with slow_clients(ports[0], 8), slow_clients(ports[1], 8):
        assert healthz_answers(stack.collector + "/healthz", 10) == 10
        assert healthz_answers(stack.dashboard + "/healthz", 10) == 10


def test_local_development_signs_in_over_plain_http_with_files_only_the_owner_reads(stack):
    with urllib.request.urlopen(stack.collector + "/login", timeout=10) as answer:
        cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("outcomes_session=") and "Secure" not in cookie
    # Created so from the start (umask, os.open), not narrowed after: nobody else ever reads them.
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (stack.data_dir, *stack.data_dir.iterdir())
    }
    assert modes["var"] == 0o700
    for name in ("outcomes.db", "outcomes.db-wal", "secret_key", "demo-logins.txt"):
        assert modes[name] == 0o600, (name, oct(modes[name]))
    # No gunicorn control socket: it would let any process of the user stop the services.
    assert not (stack.home / ".gunicorn").exists()


def test_run_starts_everything_on_the_embedded_default_and_ctrl_c_stops_it_all(stack):
    run, lines, dashboard, collector = stack.process, stack.lines, stack.dashboard, stack.collector
    try:
        output = "".join(lines)
        assert "staff login:   staff@example.org / " in output
        token = next(line.split()[-1] for line in lines if "member token" in line)
        assert dashboard in output and collector in output

        first = None
        deadline = time.monotonic() + 60
        while first is None and time.monotonic() < deadline:
            first = get_json(dashboard + "/api/v1/snapshots/latest")
            time.sleep(0.5)
        assert first and first["snapshot"]["demo"] is True
        assert first["indicators"]["ps_certificates"]["value"] > 100

        answers = {"employees": 120, "women_share": 30, "human_rights_policy": True}
        answers["policy_url"] = "https://example.org/human-rights"  # the demo form asks for it
        assert put_json(collector + "/api/v1/surveys/2025", {"answers": answers}, token) == 200
        # The submission makes a new build, which the public does not see until staff release it.
        engine = get_engine(f"sqlite:///{stack.data_dir / 'outcomes.db'}")
        built = select(func.max(Snapshot.id)).where(Snapshot.status == "built")
        newer = None
        deadline = time.monotonic() + 30
        while newer is None and time.monotonic() < deadline:
            time.sleep(0.2)
            with engine.connect() as conn:
                newer = conn.scalar(built)
        assert newer is not None and newer > first["snapshot"]["id"]
        assert get_json(dashboard + "/api/v1/snapshots/latest")["snapshot"] == first["snapshot"]
        assert first["snapshot"]["title"] == "Demo data"

        groups = children_of(run.pid)
        assert len(groups) == 4  # redis, worker, collector, dashboard
    finally:
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=60) == 0
    assert not groups & live_process_groups(), "a service outlived Ctrl-C"
