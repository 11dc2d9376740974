"""docker-compose.yml is valid and runs what the system needs."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from crm_shared import devstack

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
