"""The compose proxy (deploy/nginx.conf, run by a real nginx) in front of the real services."""

import contextlib
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from outcomes.runner import free_port, wait_until_healthy
from tests.conftest import repo_root, serving, unavailable
from tests.slow_clients import healthz_answers, slow_clients

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@contextlib.contextmanager
def proxy(tmp_path: Path, collector: str, dashboard: str):
    """Run nginx with compose's configuration, its upstreams pointed at these services."""
    if not Path(NGINX).exists():
        unavailable("nginx (Debian package nginx-light)")
    ports = {"collector": free_port(0), "dashboard": free_port(0)}
    conf = (repo_root() / "deploy" / "nginx.conf").read_text()
    for name, upstream, port in (("collector", collector, 8000), ("dashboard", dashboard, 8050)):
        conf = conf.replace(f"server {name}:{port};", f"server {upstream.split('//')[1]};")
        conf = conf.replace(f"listen {port};", f"listen 127.0.0.1:{ports[name]};")
    conf = conf.replace("access_log /dev/stdout", f"access_log {tmp_path}/access.log")
    (tmp_path / "nginx.conf").write_text(conf)
    # As root, nginx would hand requests to an unprivileged user that cannot enter tmp_path.
    directives = "daemon off; pid nginx.pid;" + (" user root;" if os.getuid() == 0 else "")
    process = subprocess.Popen(
        [NGINX, "-p", f"{tmp_path}/", "-c", "nginx.conf", "-e", "stderr", "-g", directives],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for url in base.values():
            wait_until_healthy(f"{url}/healthz", timeout=30, process=process)
        yield base, ports
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def stack(settings, tmp_path):
    """Yield the proxy's URLs and ports, in front of a collector and a dashboard."""
    with (
        serving("collector", settings) as collector,
        serving("dashboard", settings) as dashboard,
        proxy(tmp_path, collector, dashboard) as (base, ports),
    ):
        yield base, ports


def status(url: str, **request) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, **request), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_healthz_answers_through_the_proxy_while_more_slow_clients_than_threads_trickle(stack):
    base, ports = stack
    # 60 is more than the 16 threads of each service's one worker: reached directly, they
    # would hold every thread. nginx reads their headers itself and passes on whole requests.
    with slow_clients(ports["collector"], 60), slow_clients(ports["dashboard"], 60):
        assert healthz_answers(base["collector"] + "/healthz", 8) == 8
        assert healthz_answers(base["dashboard"] + "/healthz", 8) == 8


def test_the_proxy_refuses_bodies_past_the_limit_and_floods_from_one_address(stack):
    base, _ = stack
    body = b"x" * (17 * 1024 * 1024)
    headers = {"Content-Type": "application/json"}

    too_big = status(base["collector"] + "/api/v1/applications", data=body, headers=headers)
    flood = [status(base["dashboard"] + "/healthz") for _ in range(200)]

    assert too_big == 413
    assert 429 in flood and flood[0] == 200


def test_the_proxy_never_logs_a_set_password_token(stack, tmp_path):
    base, _ = stack
    assert status(base["collector"] + "/account/set-password/secret-token-123") == 404
    assert status(base["collector"] + "/healthz?visible=1") == 200
    log = (tmp_path / "access.log").read_text()
    assert "secret-token-123" not in log
    assert "/account/set-password/(token)" in log
    assert "/healthz?visible=1" in log
