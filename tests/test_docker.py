"""The Dockerfile and compose file, checked by parsing them (no Docker daemon is needed):
stages, a non-root runtime user, files that exist, settings that facedb reads, and a
compose service wired to its PostgreSQL."""

from __future__ import annotations

import os
import py_compile
import subprocess
from dataclasses import fields
from urllib.parse import urlsplit

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from facedb.config import Settings
from tests.paths import REPO

KNOWN_INSTRUCTIONS = {
    "FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "VOLUME", "EXPOSE",
    "HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL", "COMMENT",
}  # fmt: skip
# Read outside Settings: the model cache (facedb.models.store).
OTHER_VARIABLES = {"FACEDB_MODEL_DIR"}
SETTINGS_VARIABLES = {f"FACEDB_{f.name.upper()}" for f in fields(Settings)} | OTHER_VARIABLES


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(REPO / "Dockerfile"))
    assert parser.structure, "empty Dockerfile"
    return parser


def stages(parser: DockerfileParser) -> list[list[dict]]:
    """The instructions of each build stage, in order."""
    result: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_instructions_are_known_and_stages_multiple(dockerfile: DockerfileParser) -> None:
    assert {i["instruction"] for i in dockerfile.structure} <= KNOWN_INSTRUCTIONS
    built = stages(dockerfile)
    assert len(built) >= 2
    names = [stage[0]["value"].split(" AS ")[-1] for stage in built]
    assert names == ["build", "runtime"]
    assert not any(i["instruction"] == "ADD" for i in dockerfile.structure)


def test_runtime_runs_as_a_non_root_user(dockerfile: DockerfileParser) -> None:
    runtime = stages(dockerfile)[-1]
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0")
    after_user = runtime[[i["instruction"] for i in runtime].index("USER") :]
    assert not any(i["instruction"] == "RUN" for i in after_user)  # nothing runs as root later
    assert any(users[-1] in i["value"] for i in runtime if i["instruction"] == "RUN")


def test_copied_files_exist_and_scripts_work(dockerfile: DockerfileParser) -> None:
    for instruction in dockerfile.structure:
        if instruction["instruction"] != "COPY" or "--from=" in instruction["value"]:
            continue
        for source in instruction["value"].split()[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    entrypoint = REPO / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    subprocess.run(["sh", "-n", str(entrypoint)], check=True)  # shell syntax
    py_compile.compile(str(REPO / "docker" / "healthcheck.py"), doraise=True)


def test_environment_names_settings_facedb_reads(dockerfile: DockerfileParser) -> None:
    runtime_env = stages(dockerfile)[-1]
    names = {
        name
        for i in runtime_env
        if i["instruction"] == "ENV"
        for name in (pair.split("=")[0] for pair in i["value"].split())
        if name.startswith("FACEDB_")
    }
    assert names and names <= SETTINGS_VARIABLES
    exposed = {i["value"] for i in runtime_env if i["instruction"] == "EXPOSE"}
    assert exposed == {"50051 8080"}
    assert any(i["instruction"] == "HEALTHCHECK" for i in runtime_env)


def test_compose_runs_facedb_on_its_postgres() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"facedb", "postgres"}
    facedb = services["facedb"]
    assert facedb["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    environment = facedb["environment"]
    assert set(environment) <= SETTINGS_VARIABLES
    url = urlsplit(environment["FACEDB_DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg" and url.hostname == "postgres"
    assert all(port.startswith("127.0.0.1:") for port in facedb["ports"])  # plaintext: loopback
    named = {volume.split(":")[0] for volume in facedb["volumes"]}
    assert named <= set(compose["volumes"]) and any(":/models" in v for v in facedb["volumes"])
