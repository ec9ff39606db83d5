"""The GPU node pool and the training job's shape, as plain data: no Airflow, no Kubernetes client.

``include/gpu_node_pool.json`` is the single source of truth for where GPU pods may run
(Terraform builds the node group from it); this module is its only Python reader, so the pod
spec built in ``maestro_ml.orchestration.operators`` can never drift from the nodes. Everything else here
(resources, environment, the training command) is shared by both computes, so ``local`` runs
exactly the command the pod would run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from maestro_ml.settings import INCLUDE_DIR, Settings

GPU_POOL_JSON = INCLUDE_DIR / "gpu_node_pool.json"
TRAINING_MODULE = "maestro_ml.training"
# What the training image's ENTRYPOINT runs (docker/training/Dockerfile); the pod names it explicitly
# so the pod's command and the local command are the same list.
IMAGE_PYTHON = "python"
# The image's USER (docker/training/Dockerfile); tests/unit/test_pod_spec.py checks they agree.
TRAINING_UID = 10001
TRAINING_GID = 10001

# The root filesystem is read-only, so everything a run writes goes to emptyDirs mounted here.
SCRATCH_DIR = "/scratch"
TMP_DIR = "/tmp"
SHM_DIR = "/dev/shm"

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_TAINT_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})

# Non-secret settings the training process reads, passed through from the scheduling process when set.
# Credentials never travel this way: the pod gets AWS access from its service account (IRSA), and the
# local process inherits the worker's own environment.
PASSTHROUGH_ENV = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
)


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str
    effect: str
    operator: str = "Equal"


@dataclass(frozen=True)
class GpuPool:
    """The parts of ``include/gpu_node_pool.json`` a training pod needs."""

    node_selector: Mapping[str, str]
    toleration: Toleration
    namespace: str
    service_account: str
    airflow_pool: str
    airflow_pool_slots: int
    gpu_resource_name: str
    gpus_per_pod: int
    gpus_per_node: int


@dataclass(frozen=True)
class TrainingResources:
    """CPU, memory and disk of one training container.

    The defaults fit the smallest instance type of the pool (g5.xlarge: 4 vCPU, 16 GiB) after the
    kubelet's reservation and the daemonsets, so a pod never waits for a node it cannot fit on.
    Memory request equals the limit: an overcommitted training run is OOM-killed at random, late
    and expensively. The memory-backed /dev/shm counts against the memory limit.
    """

    cpu_request: str = "3"
    cpu_limit: str = "4"
    memory: str = "12Gi"
    ephemeral_storage_request: str = "20Gi"
    ephemeral_storage_limit: str = "64Gi"
    scratch_size: str = "48Gi"
    tmp_size: str = "8Gi"
    shm_size: str = "2Gi"


def _require(data: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise ValueError(f"{GPU_POOL_JSON.name}: missing {key!r}")
    value = data[key]
    # bool is an int subclass: a stray `true` must not pass as a count.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{GPU_POOL_JSON.name}: {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def parse_gpu_pool(data: Mapping[str, Any]) -> GpuPool:
    """Validate the decoded json: a typo here would otherwise surface as a pod stuck in Pending."""
    selector = _require(data, "node_selector", dict)
    if not selector or not all(
        isinstance(v, str) and _QUALIFIED_NAME.match(k) and (v == "" or _LABEL_VALUE.match(v.lower()))
        for k, v in selector.items()
    ):
        raise ValueError(f"{GPU_POOL_JSON.name}: node_selector must be a non-empty map of label keys to values")
    taint = _require(data, "taint", dict)
    if not all(isinstance(taint.get(k), str) for k in ("key", "value", "effect")):
        raise ValueError(f"{GPU_POOL_JSON.name}: taint needs string key, value and effect")
    if taint["effect"] not in _TAINT_EFFECTS:
        raise ValueError(
            f"{GPU_POOL_JSON.name}: taint effect {taint['effect']!r} is not one of {sorted(_TAINT_EFFECTS)}"
        )
    namespace = _require(data, "namespace", str)
    service_account = _require(data, "service_account", str)
    for key, name in (("namespace", namespace), ("service_account", service_account)):
        if not _K8S_NAME.match(name):
            raise ValueError(f"{GPU_POOL_JSON.name}: {key} {name!r} is not a Kubernetes name")
    gpu_resource_name = _require(data, "gpu_resource_name", str)
    if not _QUALIFIED_NAME.match(gpu_resource_name) or "/" not in gpu_resource_name:
        raise ValueError(f"{GPU_POOL_JSON.name}: gpu_resource_name {gpu_resource_name!r} is not an extended resource")
    pool = GpuPool(
        node_selector=dict(selector),
        toleration=Toleration(key=taint["key"], value=taint["value"], effect=taint["effect"]),
        namespace=namespace,
        service_account=service_account,
        airflow_pool=_require(data, "airflow_pool", str),
        airflow_pool_slots=_require(data, "airflow_pool_slots", int),
        gpu_resource_name=gpu_resource_name,
        gpus_per_pod=_require(data, "gpus_per_pod", int),
        gpus_per_node=_require(data, "gpus_per_node", int),
    )
    if not pool.airflow_pool or pool.airflow_pool_slots < 1:
        raise ValueError(f"{GPU_POOL_JSON.name}: airflow_pool needs a name and at least one slot")
    if not 1 <= pool.gpus_per_pod <= pool.gpus_per_node:
        raise ValueError(f"{GPU_POOL_JSON.name}: gpus_per_pod must be between 1 and gpus_per_node")
    return pool


def load_gpu_pool(path: Path = GPU_POOL_JSON) -> GpuPool:
    return parse_gpu_pool(json.loads(path.read_text()))


@lru_cache(maxsize=1)
def get_gpu_pool() -> GpuPool:
    """The repository's GPU pool, read once per process (DAG files are parsed over and over)."""
    return load_gpu_pool()


def container_resources(pool: GpuPool, resources: TrainingResources | None = None) -> dict[str, dict[str, str]]:
    """Requests and limits of the training container, in the shape of a Kubernetes ResourceRequirements.

    Extended resources such as GPUs cannot be overcommitted: Kubernetes requires request == limit.
    """
    resources = resources or TrainingResources()
    gpus = str(pool.gpus_per_pod)
    return {
        "requests": {
            "cpu": resources.cpu_request,
            "memory": resources.memory,
            "ephemeral-storage": resources.ephemeral_storage_request,
            pool.gpu_resource_name: gpus,
        },
        "limits": {
            "cpu": resources.cpu_limit,
            "memory": resources.memory,
            "ephemeral-storage": resources.ephemeral_storage_limit,
            pool.gpu_resource_name: gpus,
        },
    }


def training_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a training run needs, the same for both computes.

    Only locations and switches: the PII key is not passed (training reads masked data only), and
    AWS credentials come from IRSA in the pod or from the worker's own environment locally.
    """
    env = {
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MAESTRO_LAKE_URI": settings.lake_uri,
        "MAESTRO_FEATURES_URI": settings.features_uri,
        "MAESTRO_REPORTS_URI": settings.reports_uri,
        # Log lines reach the task log as they are written, not when a buffer fills.
        "PYTHONUNBUFFERED": "1",
    }
    env.update({name: environ[name] for name in PASSTHROUGH_ENV if environ.get(name)})
    return env


def pod_scratch_env() -> dict[str, str]:
    """Where libraries write in the pod: the root filesystem is read-only, only the emptyDirs are writable."""
    return {
        "HOME": SCRATCH_DIR,
        "TMPDIR": TMP_DIR,
        "MAESTRO_HOME": f"{SCRATCH_DIR}/maestro",
        "MPLCONFIGDIR": f"{SCRATCH_DIR}/.config/matplotlib",
        "XDG_CACHE_HOME": f"{SCRATCH_DIR}/.cache",
    }


def pod_visibility_problems(settings: Settings) -> list[str]:
    """Settings a pod cannot use: paths on the worker's disk or an MLflow store in a local file.

    A training pod runs on another node, so a local default would "work" until it silently
    writes its model into the pod's scratch space and throws it away.
    """
    problems = []
    for name, uri in (
        ("MAESTRO_LAKE_URI", settings.lake_uri),
        ("MAESTRO_FEATURES_URI", settings.features_uri),
        ("MAESTRO_REPORTS_URI", settings.reports_uri),
    ):
        if "://" not in uri or uri.startswith("file://"):
            problems.append(f"{name}={uri!r} is a local path")
    if not settings.mlflow_tracking_uri.startswith(("http://", "https://", "databricks")):
        problems.append(f"MLFLOW_TRACKING_URI={settings.mlflow_tracking_uri!r} is not a tracking server")
    return problems


def check_model_name(model: str) -> str:
    """Model names end up in pod labels and task ids, so they must be valid Kubernetes label values."""
    if len(model) > 63 or not _LABEL_VALUE.match(model):
        raise ValueError(f"model name {model!r} must be lower-case letters, digits, '-', '_' or '.' (at most 63)")
    return model


def training_command(model: str, python: str = IMAGE_PYTHON, module: str = TRAINING_MODULE) -> list[str]:
    """The fixed part of a training run: the interpreter, the module and the model.

    The per-run options (``training_arguments``) follow it; keeping them apart lets them be
    templated or pulled from XCom while this part is known when the DAG is parsed.
    """
    return [python, "-m", module, check_model_name(model)]


def training_arguments(
    *, train_uri: str, valid_uri: str, experiment: str, run_tags: Mapping[str, str] | None = None
) -> list[str]:
    """The per-run options of ``python -m maestro_ml.training <model>``.

    Run tags travel as one JSON object so values with spaces, commas or '=' (run ids) survive intact.
    """
    args = ["--train-uri", train_uri, "--valid-uri", valid_uri, "--experiment", experiment]
    if run_tags:
        args += ["--run-tags", json.dumps(dict(run_tags), sort_keys=True, separators=(",", ":"))]
    return args


def check_arguments(arguments: Any) -> list[str]:
    """Rendered arguments must be a flat list of strings; an upstream task returning None would otherwise
    start an expensive run with nonsense options."""
    if not isinstance(arguments, Sequence) or isinstance(arguments, str | bytes):
        raise TypeError(f"training arguments must be a list of strings, got {type(arguments).__name__}: {arguments!r}")
    bad = [a for a in arguments if not isinstance(a, str)]
    if bad:
        raise TypeError(f"training arguments must all be strings; these are not: {bad!r}")
    return list(arguments)
