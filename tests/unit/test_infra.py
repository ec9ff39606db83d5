"""Infrastructure as code stays consistent with itself and with the application.

One source of truth for the GPU node pool (include/gpu_node_pool.json) feeds Terraform and
the pod spec; images pin what requirements.txt pins; the compose stack and the Helm values
use the settings' variable names and carry no secrets. Terraform checks run when the
terraform binary is on PATH (and, for validate/test, when its AWS provider is on local disk).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GPU_POOL_JSON = REPO / "include" / "gpu_node_pool.json"
TERRAFORM = REPO / "terraform"
DOCKER = REPO / "docker"
COMPOSE = REPO / "docker-compose.yaml"
HELM_VALUES = REPO / "include" / "helm" / "values.yaml"
SETTINGS = REPO / "plugins" / "maestro_ml" / "settings.py"
TF_PLUGIN_DIR = Path(os.environ.get("MAESTRO_TF_PLUGIN_DIR", "/opt/tf-plugins"))

K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label (namespace, service account)
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY = re.compile(rf"^({DNS_SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
REQUIRED_VAR = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|PII_KEY|TOKEN")
INTERPOLATION = re.compile(r"\$\{[^}]*\}")
URI_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")
OPTION_PASSWORD = re.compile(r"password=(?P<password>[^,\s]+)")



# --- helpers ---------------------------------------------------------------------------------


def gpu_pool() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GPU_POOL_JSON.read_text())
    return data


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(path: Path) -> dict[str, str]:
    """``name -> version`` for each ``name[extras]==version`` line of a requirements file (-r followed)."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            pins.update(parse_pins(path.parent / line.split(maxsplit=1)[1]))
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)(\s*;.*)?", line)
        assert match, f"{path.name}: not an exact pin: {raw!r}"
        pins[normalize(match.group(1))] = match.group(3)
    return pins


def hcl_files() -> list[Path]:
    suffixes = (".tf", ".tftest.hcl", ".tfvars")
    return sorted(p for p in TERRAFORM.rglob("*") if p.name.endswith(suffixes) and ".terraform" not in p.parts)


def terraform_roots() -> list[Path]:
    return sorted({p.parent for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts})


def hcl_list_default(root: Path, variable: str) -> list[str]:
    text = (root / "variables.tf").read_text()
    match = re.search(rf'variable\s+"{variable}"\s*\{{.*?default\s*=\s*\[([^\]]*)\]', text, re.S)
    assert match, f"{root}: variable {variable} has no list default"
    return re.findall(r'"([^"]+)"', match.group(1))


def settings_env_names() -> set[str]:
    """Every environment variable name that plugins/maestro_ml/settings.py reads."""
    return set(re.findall(r'"((?:MAESTRO|MLFLOW)_[A-Z0-9_]+)"', SETTINGS.read_text()))


def dockerfiles() -> list[Path]:
    return sorted(DOCKER.glob("*/Dockerfile"))


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, f"{dockerfile}: no FROM"
    return instructions[starts[-1] :]


def mask_interpolations(value: str) -> str:
    """Compose ${...} references as placeholders: <required> for ${VAR:?msg}, <optional> for the rest."""
    return INTERPOLATION.sub(lambda m: "<required>" if REQUIRED_VAR.match(m.group()) else "<optional>", value)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def helm_values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HELM_VALUES.read_text())
    return data


# --- the GPU node pool: one source of truth --------------------------------------------------


def test_gpu_node_pool_json_is_well_formed() -> None:
    pool = gpu_pool()
    expected = {
        "node_group_name": str,
        "ami_type": str,
        "capacity_type": str,
        "instance_types": list,
        "gpus_per_node": int,
        "disk_size_gib": int,
        "scaling": dict,
        "node_selector": dict,
        "taint": dict,
        "gpu_resource_name": str,
        "gpus_per_pod": int,
        "namespace": str,
        "service_account": str,
        "airflow_pool": str,
        "airflow_pool_slots": int,
    }
    assert set(expected) <= set(pool), f"missing keys: {sorted(set(expected) - set(pool))}"
    for key, kind in expected.items():
        assert isinstance(pool[key], kind), f"{key} must be a {kind.__name__}"

    assert K8S_NAME.match(pool["node_group_name"])
    assert pool["ami_type"] in {"AL2023_x86_64_NVIDIA", "AL2_x86_64_GPU", "BOTTLEROCKET_x86_64_NVIDIA"}
    assert pool["capacity_type"] in {"ON_DEMAND", "SPOT"}
    assert pool["instance_types"] and all(re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+", t) for t in pool["instance_types"])

    scaling = pool["scaling"]
    assert set(scaling) == {"min_size", "desired_size", "max_size"}
    assert 0 <= scaling["min_size"] <= scaling["desired_size"] <= scaling["max_size"] and scaling["max_size"] >= 1

    assert pool["node_selector"], "GPU pods need a nodeSelector"
    for key, value in pool["node_selector"].items():
        assert LABEL_KEY.match(key) and isinstance(value, str) and LABEL_VALUE.match(value), (key, value)

    taint = pool["taint"]
    assert set(taint) == {"key", "value", "effect"}
    assert LABEL_KEY.match(taint["key"]) and LABEL_VALUE.match(taint["value"])
    # Kubernetes spelling in the JSON (what the pod toleration uses); Terraform maps it for EKS.
    assert taint["effect"] in {"NoSchedule", "PreferNoSchedule", "NoExecute"}

    assert LABEL_KEY.match(pool["gpu_resource_name"])
    assert K8S_NAME.match(pool["namespace"]) and K8S_NAME.match(pool["service_account"])
    assert pool["airflow_pool"] and pool["airflow_pool_slots"] >= 1
    assert pool["gpus_per_pod"] >= 1 and pool["gpus_per_node"] >= pool["gpus_per_pod"]
    # Airflow never admits more GPU pods than the node group can ever hold.
    assert pool["airflow_pool_slots"] * pool["gpus_per_pod"] <= scaling["max_size"] * pool["gpus_per_node"]


def test_every_terraform_root_reads_the_gpu_pool_json() -> None:
    roots = terraform_roots()
    assert TERRAFORM in roots
    reader = re.compile(r'jsondecode\(\s*file\(\s*"\$\{path\.module\}/([^"]+gpu_node_pool\.json)"\s*\)\s*\)')
    for root in roots:
        text = "\n".join(p.read_text() for p in root.glob("*.tf"))
        if root == TERRAFORM or "gpu_pool" in text:
            paths = reader.findall(text)
            assert len(paths) == 1, f"{root}: read gpu_node_pool.json exactly once with jsondecode(file(...))"
            assert (root / paths[0]).resolve() == GPU_POOL_JSON, f"{root}: {paths[0]} is not include/gpu_node_pool.json"


def test_no_hard_coded_copy_of_the_gpu_pool_in_terraform() -> None:
    pool = gpu_pool()
    # Distinctive strings that may appear anywhere only through local.gpu_pool.
    anywhere = {pool["taint"]["key"], pool["gpu_resource_name"], *pool["node_selector"]}
    # Short values that may appear only as whole quoted strings.
    quoted = {pool["taint"]["value"], pool["namespace"], pool["service_account"], *pool["instance_types"]}
    for path in hcl_files():
        text = path.read_text()
        rel = path.relative_to(REPO)
        for value in anywhere:
            assert value not in text, f"{rel} hard-codes {value!r}: use local.gpu_pool"
        for value in quoted:
            assert f'"{value}"' not in text, f"{rel} hard-codes {value!r}: use local.gpu_pool"
    assert "NO_SCHEDULE" in (TERRAFORM / "locals.tf").read_text(), "the taint effect mapping lives in locals.tf"


# --- images -----------------------------------------------------------------------------------


def test_images_run_as_a_numeric_non_root_user() -> None:
    assert {p.parent.name for p in dockerfiles()} >= {"airflow", "training"}
    for dockerfile in dockerfiles():
        users = [args for keyword, args in final_stage(dockerfile) if keyword == "USER"]
        assert users, f"{dockerfile}: the final stage sets no USER"
        uid, _, gid = users[-1].partition(":")
        assert uid.isdigit() and int(uid) != 0, f"{dockerfile}: USER {users[-1]} is not a numeric non-root uid"
        assert not gid or gid.isdigit(), f"{dockerfile}: USER {users[-1]} group is not numeric"


def test_training_image_entrypoint_and_contents() -> None:
    stage = final_stage(DOCKER / "training" / "Dockerfile")
    entrypoints = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["python", "-m", "maestro_ml.training"]
    assert any(keyword == "COPY" and "plugins/maestro_ml" in args for keyword, args in stage)
    text = (DOCKER / "training" / "Dockerfile").read_text()
    assert "docker/training/requirements.txt" in text
    needed = {"torch", "lightgbm", "mlflow", "pandas", "pyarrow", "fsspec", "s3fs"}
    assert needed <= set(parse_pins(DOCKER / "training" / "requirements.txt"))


def test_image_requirements_pin_the_same_versions_as_requirements_txt() -> None:
    project = parse_pins(REPO / "requirements.txt")
    image_files = sorted(DOCKER.glob("*/requirements.txt"))
    assert image_files
    for path in image_files:
        for name, version in parse_pins(path).items():
            if name in project:
                assert version == project[name], (
                    f"{path.relative_to(REPO)}: {name}=={version}, requirements.txt has {project[name]}"
                )


def test_airflow_image_matches_the_pinned_airflow() -> None:
    airflow = parse_pins(REPO / "requirements.txt")["apache-airflow"]
    text = (DOCKER / "airflow" / "Dockerfile").read_text()
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow)}-python3\.11\s*$", text, re.M), "base image tag"
    assert re.search(rf"^ARG AIRFLOW_VERSION={re.escape(airflow)}\s*$", text, re.M), "the airflow pin constraint"
    assert re.search(r"--constraint\b", text) and "requirements.txt" in text
    for folder in ("dags", "plugins", "include"):
        assert re.search(rf"^COPY .*\b{folder}/ /opt/airflow/{folder}/\s*$", text, re.M), f"{folder}/ is not baked in"


# --- docker-compose.yaml -----------------------------------------------------------------------


def test_compose_stack_has_the_services() -> None:
    """The layout of Airflow's official compose file (CeleryExecutor) plus the platform's stores;
    tests/unit/test_compose_helm.py checks the file against the Compose schema and the settings in full."""
    services = compose()["services"]
    airflow = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
               "airflow-worker"}
    assert set(services) >= {"postgres", "redis", "object-store", "bucket-init", "mlflow", *airflow}
    assert services["airflow-init"]["command"] == [
        "bash", "-c", "airflow db migrate && exec python -m maestro_ml.platform.bootstrap pools"
    ]
    for name in airflow:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert env["MAESTRO_FEAST_ENV"] == "server"
        if name != "airflow-init":
            depends = services[name]["depends_on"]
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    mlflow = services["mlflow"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    # Artifacts on the object store, proxied by the server.
    assert mlflow["command"][mlflow["command"].index("--artifacts-destination") + 1].startswith("s3://")


def test_compose_uses_the_settings_names_and_no_inline_secret() -> None:
    known = settings_env_names()
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if key.startswith("MAESTRO_"):
                assert key in known, f"{name}: {key} is not read by maestro_ml.settings"
            if SECRET_NAME.search(key):
                assert REQUIRED_VAR.match(value), f"{name}: {key} must come from ${{VAR:?...}}, not be written here"
            masked = mask_interpolations(value)
            for pattern in (URI_PASSWORD, OPTION_PASSWORD):
                for match in pattern.finditer(masked):
                    assert match.group("password") == "<required>", f"{name}: {key} embeds a literal password"


# --- Helm values -------------------------------------------------------------------------------


def test_helm_values_image_executor_and_secrets() -> None:
    values = helm_values()
    assert values["executor"] in {"KubernetesExecutor", "CeleryExecutor"}
    assert values["airflowVersion"] == parse_pins(REPO / "requirements.txt")["apache-airflow"]
    assert values["images"]["airflow"]["repository"].endswith("/airflow")
    # Secrets come from existing Kubernetes Secrets, never from values.
    for inline in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey", "extraSecrets"):
        assert not values.get(inline), f"{inline} would put a secret in the values file"
    assert "metadataConnection" not in values.get("data", {})
    for ref in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values.get(ref), f"{ref} must name an existing Secret"
    assert values["data"]["metadataSecretName"]

    known = settings_env_names()
    env_names = {item["name"] for item in values["env"]}
    secret_names = {item["envName"] for item in values["secret"]}
    for name in env_names | secret_names:
        if name.startswith("MAESTRO_"):
            assert name in known, f"{name} is not read by maestro_ml.settings"
    assert "MAESTRO_PII_KEY" in secret_names and not any(SECRET_NAME.search(n) for n in env_names)
    assert {"MAESTRO_LAKE_URI", "MAESTRO_LANDING_URI", "MLFLOW_TRACKING_URI", "MAESTRO_TRAINING_IMAGE"} <= env_names
    assert {item["name"]: item["value"] for item in values["env"]}["MAESTRO_COMPUTE"] == "kubernetes"


def test_helm_migration_job_creates_the_training_pool() -> None:
    """The pool comes from include/gpu_node_pool.json through the bootstrap command, not from values here."""
    values = helm_values()
    args = values["migrateDatabaseJob"]["args"]
    assert args[:2] == ["bash", "-c"]
    assert args[2] == "airflow db migrate && exec python -m maestro_ml.platform.bootstrap pools"
    # The stock image has no maestro_ml to run.
    assert not values.get("images", {}).get("useDefaultImageForMigration", False)


def test_helm_service_accounts_match_terraform() -> None:
    values = helm_values()
    # KubernetesExecutor task pods use workers.kubernetes.serviceAccount (chart >= 1.17), triggers the triggerer's.
    accounts = {
        path: block["serviceAccount"]
        for path, block in [*values.items(), *(
            (f"{name}.{sub}", inner) for name, outer in values.items() if isinstance(outer, dict)
            for sub, inner in outer.items()
        )]
        if isinstance(block, dict) and isinstance(block.get("serviceAccount"), dict)
    }
    launching = {accounts[c]["name"] for c in ("workers.kubernetes", "triggerer")}
    with_role = {
        account["name"] for account in accounts.values()
        if "eks.amazonaws.com/role-arn" in account.get("annotations", {})
    }
    assert launching <= with_role
    assert with_role <= set(hcl_list_default(TERRAFORM, "airflow_service_accounts")), "IRSA trust (terraform/)"
    k8s_root = TERRAFORM / "kubernetes"
    assert launching <= set(hcl_list_default(k8s_root, "airflow_service_accounts")), "pod-launch RBAC"
