"""Infrastructure as code checked by its own tools: terraform fmt / validate / test and docker compose config.

They run the tools in subprocesses (seconds to tens of seconds), when the tools are on this machine;
the pure file checks are in tests/unit/test_infra.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GPU_POOL_JSON = REPO / "include" / "gpu_node_pool.json"
TERRAFORM = REPO / "terraform"
COMPOSE = REPO / "docker-compose.yaml"
# Example variable files, relative to terraform/: one per environment, plus the generic example.
TF_VAR_FILES = [
    *sorted(p.relative_to(TERRAFORM).as_posix() for p in (TERRAFORM / "environments").glob("*.tfvars")),
    "terraform.tfvars.example",
]
TF_PLUGIN_DIR = Path(os.environ.get("MAESTRO_TF_PLUGIN_DIR", "/opt/tf-plugins"))
COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "test-pg",
    "REDIS_PASSWORD": "test-redis",
    "AIRFLOW_FERNET_KEY": "test-fernet",
    "AIRFLOW_API_SECRET_KEY": "test-api",
    "AIRFLOW_JWT_SECRET": "test-jwt",
    "MAESTRO_PII_KEY": "test-pii",
    "MINIO_ROOT_USER": "test-minio",
    "MINIO_ROOT_PASSWORD": "test-minio-pw",
    "OBJECT_STORE_ACCESS_KEY": "test-s3-key",
    "OBJECT_STORE_SECRET_KEY": "test-s3-secret",
}


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH")
def test_terraform_fmt() -> None:
    result = run(["terraform", "fmt", "-check", "-recursive", "-no-color", "."], cwd=TERRAFORM)
    assert result.returncode == 0, f"terraform fmt -check failed on: {result.stdout}{result.stderr}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH")
def test_terraform_validate_and_mocked_test(tmp_path: Path) -> None:
    """validate + `terraform test` (mocked AWS) on a copy, with the AWS provider from local disk only.

    Then each environment's tfvars (environments/*.tfvars and terraform.tfvars.example) is planned
    against the mocked provider by tests/environments/, so every example passes the validations.
    """
    if not (TF_PLUGIN_DIR / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        pytest.skip(f"no local hashicorp/aws provider under {TF_PLUGIN_DIR} (providers cannot be downloaded here)")
    shutil.copytree(TERRAFORM, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (tmp_path / "include").mkdir()
    shutil.copy(GPU_POOL_JSON, tmp_path / "include" / GPU_POOL_JSON.name)
    root = tmp_path / "terraform"
    for cmd in (
        ["terraform", "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={TF_PLUGIN_DIR}"],
        ["terraform", "validate", "-no-color"],
        ["terraform", "test", "-no-color"],
        *(
            ["terraform", "test", "-no-color", "-test-directory=tests/environments", f"-var-file={var_file}"]
            for var_file in TF_VAR_FILES
        ),
    ):
        result = run(cmd, cwd=root, env={"TF_DATA_DIR": str(tmp_path / "tf-data")})
        assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout}\n{result.stderr}"


def _compose_cli() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        version = subprocess.run([*cmd, "version"], capture_output=True, text=True, check=False)
        if version.returncode == 0 and re.search(r"v?2\.\d+", version.stdout):
            return cmd
    return None


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 CLI (docker compose / docker-compose) on PATH")
    # --env-file /dev/null: a developer's own .env cannot change the outcome.
    cmd = [*cli, "-f", str(COMPOSE), "--project-directory", str(REPO), "--env-file", os.devnull, "config", "-q"]

    def compose_config(env: dict[str, str]) -> str:
        """Compose's complaints; empty when the file is valid (a pip-installed wrapper may exit 0 on errors)."""
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        return result.stderr.strip() or ("" if result.returncode == 0 else f"exit status {result.returncode}")

    env = {**os.environ, **COMPOSE_ENV}
    assert compose_config(env) == "", "docker compose config rejects the file"
    without_password = {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"}
    assert "POSTGRES_PASSWORD" in compose_config(without_password), "a missing secret must stop compose"
