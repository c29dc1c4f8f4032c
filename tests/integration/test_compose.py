"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated by a real compose implementation (`docker compose config -q`,
else Debian's `docker-compose config -q`: `apt-get install -y --no-install-recommends
docker-compose`), which needs no engine; the tests skip when neither is installed. The
structure (replicas, healthchecks, dependencies, shared environment) is checked with PyYAML.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"

ONE_SHOT = {"migrate"}
LONG_RUNNING = {"postgres", "redis", "fakes", "gateway"}
PATRON_SERVICES = {"fakes", "migrate", "gateway"}
REQUIRED_ENV = {
    "PATRON_ENV",
    "PATRON_DATABASE_URL",
    "PATRON_REDIS_URL",
    "PATRON_PROGRAM",
    "PATRON_JWT_SECRET",
    "PATRON_COMMERCE_API_URL",
    "PATRON_COMMERCE_AUTH_URL",
    "PATRON_COMMERCE_PROJECT_KEY",
    "PATRON_COMMERCE_CLIENT_ID",
    "PATRON_COMMERCE_CLIENT_SECRET",
    "PATRON_CMS_URL",
    "PATRON_CMS_LOCALE",
    "PATRON_CDP_PROFILE_URL",
    "PATRON_CDP_SPACE_ID",
    "PATRON_CDP_TOKEN",
    "PATRON_CDP_TRACKING_URL",
    "PATRON_CDP_WRITE_KEY",
    "PATRON_CDP_REGULATIONS_URL",
    "PATRON_WEBHOOK_SECRET",
    "PATRON_CDP_WEBHOOK_SECRET",
    "PATRON_CARD_SECRET",
}


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works here, else `docker-compose`, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "no compose implementation: neither `docker compose` nor `docker-compose` is"
            " installed (apt-get install -y --no-install-recommends docker-compose)"
        )
    # Only the interpolated defaults matter here, not whatever the caller has exported.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PATRON_")}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{' '.join(command)} config failed:\n{result.stderr}"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def test_services(compose: dict[str, Any]) -> None:
    assert set(_services(compose)) == LONG_RUNNING | ONE_SHOT


def test_gateway_runs_two_replicas(compose: dict[str, Any]) -> None:
    gateway = _services(compose)["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["ports"] == ["8000-8001:8000"]
    assert "container_name" not in gateway  # it would forbid a second replica
    assert gateway["command"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name in sorted(LONG_RUNNING):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable", False), f"{name} disables its healthcheck"
        assert healthcheck.get("test"), f"{name}'s healthcheck has no test"
    gateway_test = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "/healthz" in gateway_test
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_start_order(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    depends = services["gateway"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["fakes"]["condition"] == "service_healthy"
    assert services["fakes"]["command"] == ["fakes", "--host", "0.0.0.0", "--port", "9100"]


def test_patron_services_share_one_image_and_environment(compose: dict[str, Any]) -> None:
    services = _services(compose)
    environments = [services[name]["environment"] for name in sorted(PATRON_SERVICES)]
    assert all(env == environments[0] for env in environments)
    env = environments[0]
    assert set(env) >= REQUIRED_ENV
    assert env["PATRON_DATABASE_URL"] == (
        "postgresql+asyncpg://postgres:postgres@postgres:5432/patron"
    )
    assert env["PATRON_REDIS_URL"] == "redis://redis:6379/0"
    assert env["PATRON_JWT_SECRET"] == "${PATRON_JWT_SECRET:-change-me-in-production}"
    for name in ("PATRON_WEBHOOK_SECRET", "PATRON_CDP_WEBHOOK_SECRET", "PATRON_CARD_SECRET"):
        assert env[name].startswith(f"${{{name}:-"), f"{name} has no overridable default"
    assert {services[name]["image"] for name in PATRON_SERVICES} == {"patron:local"}


def test_compose_commands_parse_with_the_cli(compose: dict[str, Any]) -> None:
    """Every `patron` command line in the compose file is one the CLI accepts."""
    from gateway.cli import _parser

    parser = _parser()
    for name in sorted(PATRON_SERVICES):
        command = _services(compose)[name]["command"]
        parser.parse_args(command)  # SystemExit (and a usage message) if not


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "FROM ${PYTHON_IMAGE} AS runtime" in text
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert 'ENTRYPOINT ["patron"]' in text
    assert "HEALTHCHECK" in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and not users[-1].startswith(("root", "0")), "the image must not run as root"
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored and ".venv" in ignored and ".git" in ignored
