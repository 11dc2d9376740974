"""docker-compose.yml is valid and runs what the system needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from crm_shared import devstack
from crm_shared.settings import ServiceSettings
from engagement.settings import EngagementSettings
from gateway.settings import GatewaySettings
from identity.settings import IdentitySettings
from rewards.settings import RewardsSettings

COMPOSE = devstack.REPO / "docker-compose.yml"
PARTS = {
    "postgres",
    "rabbitmq",
    "otel-collector",
    "jaeger",
    "migrate",
    "identity",
    "engagement",
    "rewards",
    "gateway",
}


def test_docker_compose_config_accepts_the_file() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if plugin.returncode != 0:
        pytest.skip("the docker client here has no compose plugin")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_compose_runs_every_part_from_the_one_image_with_its_own_settings() -> None:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    assert PARTS <= set(services)
    for name, port in (
        ("gateway", 8000),
        ("identity", 8001),
        ("engagement", 8002),
        ("rewards", 8003),
    ):
        service = services[name]
        assert service["build"]["dockerfile"] == "infra/Dockerfile"
        assert f"{name}.main:create_app" in service["command"]
        assert service["command"][-1] == str(port)
        assert service["environment"]["OTEL_SERVICE_NAME"] == name
    for name in ("identity", "engagement", "rewards"):
        env = services[name]["environment"]
        assert env[f"{name.upper()}_DATABASE_URL"].startswith(f"postgresql://{name}_svc:")
        assert "@rabbitmq:5672/" in env[f"{name.upper()}_AMQP_URL"]
    assert (devstack.REPO / "infra" / "Dockerfile").exists()


SPEC = Path(__file__).resolve().parent / "compose_spec" / "compose-spec.json"


def test_the_compose_specification_schema_accepts_the_file() -> None:
    """The Compose specification's own JSON schema (vendored, see compose_spec/README.md):
    a check of the file that needs no Docker client."""
    schema = json.loads(SPEC.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in validator.iter_errors(yaml.safe_load(COMPOSE.read_text()))
    ]
    assert errors == []
    # The schema does refuse what compose refuses (a misspelt key, a wrong type).
    broken = {"services": {"identity": {"image": 1, "enviroment": {}}}}
    assert len(list(validator.iter_errors(broken))) == 2


# Each part, the settings classes it reads its environment with (pydantic env prefixes), and
# the settings it uses (None: all of them).
SETTINGS: dict[str, list[tuple[type[ServiceSettings], set[str] | None]]] = {
    "identity": [(IdentitySettings, None)],
    "engagement": [(EngagementSettings, None)],
    "rewards": [(RewardsSettings, None)],
    # The gateway uses neither the database nor the broker (GatewaySettings says so).
    "gateway": [
        (GatewaySettings, set(GatewaySettings.model_fields) - {"database_url", "amqp_url"})
    ],
    # Migrations only: alembic's env.py reads each service's database_url.
    "migrate": [
        (cls, {"database_url"}) for cls in (IdentitySettings, EngagementSettings, RewardsSettings)
    ],
}
# URL-shaped settings that no service calls: names and links handed to others.
NOT_CALLED = {"auth_issuer", "referral_link_base"}
URL = re.compile(r"\b[a-z][a-z0-9+]*://[^\s\"',}]+")


def _settings_as_the_part_reads_them(
    monkeypatch: pytest.MonkeyPatch, cls: type[ServiceSettings], env: dict[str, Any]
) -> ServiceSettings:
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name in list(os.environ):
        if name.startswith(prefix) or name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return cls()


def _urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [u for v in value.values() for u in _urls(v)]
    if isinstance(value, list):
        return [u for v in value for u in _urls(v)]
    return URL.findall(value) if isinstance(value, str) else []


def test_every_url_a_part_calls_names_a_compose_service_on_its_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each part's settings, read from its compose environment as the code reads them: every
    URL it would call (database, broker, management API, JWKS, subgraphs, OTLP, and the URLs of
    its command) names a service of the file, on the port that service listens on. A default
    (127.0.0.1 inside the container) would be the container itself."""
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    listening = {
        "postgres": {5432},
        "rabbitmq": {5672, 15672},
        "otel-collector": {4317, 4318},
        "jaeger": {4317, 4318, 16686},
    }
    for name, port in (("gateway", 8000), ("identity", 8001), ("engagement", 8002)):
        listening[name] = {port}
    listening["rewards"] = {8003}
    wrong = []
    for part, classes in SETTINGS.items():
        env = services[part].get("environment", {})
        called: list[tuple[str, str]] = []
        for cls, used in classes:
            settings = _settings_as_the_part_reads_them(monkeypatch, cls, env)
            for field, value in settings.model_dump(mode="json").items():
                if field not in NOT_CALLED and (used is None or field in used):
                    called += [(f"{cls.__name__}.{field}", u) for u in _urls(value)]
        called += [(k, u) for k, v in env.items() if k.startswith("OTEL_") for u in _urls(v)]
        called += [("command", u) for u in _urls(services[part].get("command"))]
        assert called, part
        for where, url in called:
            parts = urlsplit(url)
            if parts.hostname not in listening or parts.port not in listening[parts.hostname]:
                wrong.append(f"{part}: {where} = {url}")
    assert wrong == [], "URLs that reach no compose service (or the wrong port)"


def test_the_gateway_knows_every_subgraph_by_its_compose_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = yaml.safe_load(COMPOSE.read_text())["services"]["gateway"]["environment"]
    settings = _settings_as_the_part_reads_them(monkeypatch, GatewaySettings, env)
    assert isinstance(settings, GatewaySettings)
    assert settings.subgraph_urls == {
        name: f"http://{name}:{port}/graphql"
        for name, port in (("identity", 8001), ("engagement", 8002), ("rewards", 8003))
    }
