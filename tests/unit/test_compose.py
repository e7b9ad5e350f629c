"""docker-compose.yml runs the commands and settings the tests run (no Docker engine here)."""

import re
from pathlib import Path

import pytest
import yaml

from outcomes.cli import build_parser
from outcomes.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = {name: s for name, s in COMPOSE["services"].items() if "build" in s}
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
DOCUMENTED = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))


def compose_environment(service: dict) -> dict[str, str]:
    """Return a service's environment with compose's `${NAME:-default}` forms resolved."""
    resolved = {"SECRET_KEY": "a-secret-set-in-.env"}
    return {
        name: re.sub(r"\$\{(\w+)(?::[-?]([^}]*))?\}", lambda m: resolved.get(m[1], m[2]), value)
        for name, value in service["environment"].items()
    }


def test_every_application_service_runs_an_outcomes_command_the_cli_accepts():
    assert set(APP_SERVICES) == {"migrate", "collector", "worker", "beat", "dashboard"}
    for name, service in APP_SERVICES.items():
        program, *arguments = service["command"]
        assert program == "outcomes", name
        build_parser().parse_args(arguments)  # exits (fails the test) on an unknown option


def test_every_variable_compose_sets_is_a_documented_setting_that_parses():
    for service in APP_SERVICES.values():
        environment = compose_environment(service)
        assert set(environment) <= DOCUMENTED
        settings = Settings.from_env(environment)
        assert not settings.embedded
        assert settings.database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(("name", "port_setting"), [("collector", 8000), ("dashboard", 8050)])
def test_services_are_published_through_the_proxy_at_the_settings_ports(name, port_setting):
    service = APP_SERVICES[name]
    settings = Settings.from_env(compose_environment(service))
    port = settings.collector_port if name == "collector" else settings.dashboard_port
    assert port == port_setting
    assert "ports" not in service and service["expose"] == [str(port)]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    proxy = COMPOSE["services"]["proxy"]
    assert f"${{{name.upper()}_PORT:-{port}}}:{port}" in proxy["ports"]
    assert f"server {name}:{port};" in NGINX and f"listen {port};" in NGINX


def test_the_proxy_runs_the_tested_configuration_and_the_services_trust_only_it():
    proxy = COMPOSE["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    for service in APP_SERVICES.values():
        settings = Settings.from_env(compose_environment(service))
        assert settings.proxy_hops == 1
        assert settings.secure_cookies  # __Host- cookies, HTTPS only, unless .env says otherwise
