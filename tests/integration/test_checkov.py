"""checkov (pinned in requirements-dev.txt) over terraform/, the Helm values and the compose file: no failed check.

What checkov can check, per target (checkov 3.1.47, offline: --skip-download, no Bridgecrew/Prisma API):

- ``terraform/``: the ``terraform`` framework, i.e. checkov's AWS and Kubernetes resource policies, over
  both roots (terraform/ and terraform/kubernetes/), evaluated with the variables' defaults. Every
  skip is an inline ``#checkov:skip=CKV_...:reason`` comment on the resource it concerns. The scan is
  not vacuous: it must report passed + failed > 0 checks.
- ``include/helm/values.yaml`` and ``docker-compose.yaml``: checkov has no framework for a Helm
  *values* file (its ``helm`` framework renders a whole chart with the helm binary, and the chart is
  not vendored here) nor for Compose files; its ``kubernetes`` framework reads only manifests
  (apiVersion/kind), and its generic ``yaml`` framework ships no built-in policy. What applies, and
  is meaningful for these two files, is the ``secrets`` framework: hard-coded credentials, private
  keys, tokens and high-entropy strings (CKV_SECRET_*). That framework reports findings only, never
  passed checks, so a clean file reads passed + failed == 0. To prove the scan really reads the file,
  the same scan also runs on a copy of it with a planted fake credential, and must fail there
  (a positive control); only then does "0 failed" on the real file mean something.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
HELM_VALUES = REPO / "include" / "helm" / "values.yaml"
COMPOSE = REPO / "docker-compose.yaml"

# A fake credential checkov's secrets framework must flag (the positive control); never a real one.
PLANTED_SECRET = "\nplanted_by_test_checkov:\n  aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYzK8aQ2pZ9s\n"


def checkov_binary() -> str | None:
    """The checkov of this virtualenv (next to sys.executable), else the one on PATH."""
    beside = Path(sys.executable).parent / "checkov"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("checkov")


CHECKOV = checkov_binary()
pytestmark = pytest.mark.skipif(
    CHECKOV is None, reason="checkov is not installed (pip install -r requirements-dev.txt pins it)"
)


def run_checkov(target: Path, framework: str, cwd: Path) -> dict[str, Any]:
    """One checkov scan of a file or directory with one framework; its summary and failed checks."""
    assert CHECKOV is not None
    flag = "-d" if target.is_dir() else "-f"
    cmd = [
        CHECKOV,
        flag,
        str(target),
        "--framework",
        framework,
        "--skip-download",
        "--quiet",
        "--compact",
        "-o",
        "json",
    ]
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    # Exit status 1 only means "failed checks"; anything else is checkov itself failing.
    assert result.returncode in (0, 1), f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{' '.join(cmd)}: no JSON report:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    reports = data if isinstance(data, list) else [data]
    summary = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
    failed: list[str] = []
    for report in reports:
        # A scan that found nothing to report is a bare summary, without check_type or results.
        if report.get("check_type", framework) != framework:
            continue
        for key in summary:
            summary[key] += int(report.get("summary", report).get(key, 0))
        for check in report.get("results", {}).get("failed_checks", []):
            lines = check.get("file_line_range", [])
            failed.append(f"{check['check_id']} {check.get('resource', '')} {check.get('file_path', '')}:{lines}")
    return {"summary": summary, "failed": failed}


@pytest.mark.parametrize(
    "tfvars",
    [None, "create_cluster = true\n"],
    ids=["defaults", "created-cluster"],
)
def test_checkov_terraform_has_no_failed_check(tfvars: str | None, tmp_path: Path) -> None:
    """checkov leaves out resources whose count is 0 under the variables' defaults (the adopted cluster
    creates no aws_eks_cluster), so a second scan of a copy, with create_cluster = true in an
    *.auto.tfvars that checkov reads, covers the created control plane too."""
    target = TERRAFORM
    if tfvars is not None:
        target = tmp_path / "terraform"
        shutil.copytree(TERRAFORM, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        (target / "checkov.auto.tfvars").write_text(tfvars)
    report = run_checkov(target, "terraform", cwd=target.parent)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, f"checkov could not parse some of terraform/: {summary}"
    assert summary["passed"] + summary["failed"] > 0, f"checkov ran no terraform check: {summary}"
    assert not report["failed"], "checkov failed checks in terraform/:\n" + "\n".join(report["failed"])


@pytest.mark.parametrize("target", [HELM_VALUES, COMPOSE], ids=["helm-values", "compose"])
def test_checkov_secrets_in_yaml_has_no_failed_check(target: Path, tmp_path: Path) -> None:
    # The positive control: the same scan on a copy carrying a planted fake credential must fail.
    planted = tmp_path / target.name
    planted.write_text(target.read_text() + PLANTED_SECRET)
    control = run_checkov(planted, "secrets", cwd=tmp_path)
    assert control["summary"]["failed"] > 0, (
        f"checkov's secrets scan found no planted secret in a copy of {target.name}"
    )

    report = run_checkov(target, "secrets", cwd=REPO)
    assert report["summary"]["parsing_errors"] == 0, f"checkov could not parse {target.name}: {report['summary']}"
    assert not report["failed"], f"checkov failed checks in {target.relative_to(REPO)}:\n" + "\n".join(report["failed"])
