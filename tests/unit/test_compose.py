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
def test_published_ports_and_health_checks_match_the_settings_ports(name, port_setting):
    service = APP_SERVICES[name]
    settings = Settings.from_env(compose_environment(service))
    port = settings.collector_port if name == "collector" else settings.dashboard_port
    assert port == port_setting
    assert service["ports"] == [f"${{{name.upper()}_PORT:-{port}}}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
