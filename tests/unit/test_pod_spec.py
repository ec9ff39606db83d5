"""The training task on both computes: the pod Airflow would submit, checked offline, and the local process.

The pod is built by the operator's own ``build_pod_request_obj`` (after rendering its templates, as
a worker does), serialized like the Kubernetes client sends it, and validated against the
Kubernetes OpenAPI schema with ``kubernetes_validate``: no cluster needed.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from maestro_ml.orchestration.defaults import DEFAULT_ARGS
from maestro_ml.platform.training_job import GPU_POOL_JSON, parse_gpu_pool, training_arguments
from maestro_ml.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING_DOCKERFILE = REPO_ROOT / "docker" / "training" / "Dockerfile"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/maestro-ml/training:0123abc"
MLFLOW = "http://mlflow.mlflow.svc.cluster.local:5000"
SECRET = "do-not-leak-this-value"
# Oldest EKS version still in standard support when this was written, and the newest schema shipped.
K8S_VERSIONS = ("1.31.0", "1.34.0", kubernetes_validate.latest_version())
ARGS = training_arguments(
    train_uri="s3://lake/training/2026-11-02/train",
    valid_uri="s3://lake/training/2026-11-02/valid",
    experiment="churn",
    run_tags={"dag_id": "train_models", "run_id": "scheduled__2026-11-02T00:00:00+00:00"},
)


@pytest.fixture
def gpu_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GPU_POOL_JSON.read_text())
    return data


@pytest.fixture
def kubernetes_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAESTRO_COMPUTE", "kubernetes")
    monkeypatch.setenv("MAESTRO_TRAINING_IMAGE", IMAGE)
    monkeypatch.setenv("MAESTRO_LAKE_URI", "s3://maestro-lake/curated")
    monkeypatch.setenv("MAESTRO_REPORTS_URI", "s3://maestro-lake/reports")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", MLFLOW)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # Present in the worker's environment, and must never be copied into the pod spec.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("MAESTRO_PII_KEY", SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def dockerfile_final_stage() -> str:
    text = TRAINING_DOCKERFILE.read_text().replace("\\\n", " ")
    return re.split(r"^FROM\s", text, flags=re.M)[-1]


def context(task_id: str, xcoms: dict[str, Any] | None = None) -> dict[str, Any]:
    """The few context entries rendering and pod building read; xcom_pull answers from ``xcoms``."""

    def xcom_pull(task_ids: str, **_: Any) -> Any:
        return (xcoms or {})[task_ids]

    ti = SimpleNamespace(
        dag_id="train_models",
        task_id=task_id,
        map_index=-1,
        try_number=1,
        log_url="http://airflow/dags/train_models/runs/r/tasks/train",
        xcom_pull=xcom_pull,
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": "manual__2026-11-02T00:00:00+00:00",
        "dag": SimpleNamespace(dag_id="train_models"),
    }


def rendered_pod(op: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    """Render like a worker, build the pod like the operator, serialize like the Kubernetes client."""
    op.render_template_fields(ctx)
    pod = op.build_pod_request_obj(ctx, dry_run=True)
    serialized: dict[str, Any] = ApiClient().sanitize_for_serialization(pod)
    return serialized


@pytest.fixture
def pod_operator(kubernetes_env: None) -> Any:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from maestro_ml.orchestration.operators import training_task

    op = training_task("train_lightgbm", "lightgbm", list(ARGS))
    assert isinstance(op, KubernetesPodOperator)
    return op


@pytest.fixture
def pod(pod_operator: Any) -> dict[str, Any]:
    return rendered_pod(pod_operator, context("train_lightgbm"))


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["spec"]["containers"]
    result: dict[str, Any] = only
    return result


# --- the pod spec ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pod_is_valid_kubernetes(pod: dict[str, Any], version: str) -> None:
    # strict: unknown or misspelt fields are errors, not silently dropped by the API server.
    kubernetes_validate.validate(pod, version, strict=True)


def test_gpu_placement_and_resources_come_from_gpu_node_pool_json(
    pod: dict[str, Any], gpu_json: dict[str, Any]
) -> None:
    spec = pod["spec"]
    assert spec["nodeSelector"] == gpu_json["node_selector"]
    taint = gpu_json["taint"]
    assert spec["tolerations"] == [
        {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": taint["effect"]}
    ]
    assert pod["metadata"]["namespace"] == gpu_json["namespace"]
    assert spec["serviceAccountName"] == gpu_json["service_account"]
    assert spec["automountServiceAccountToken"] is False

    resources = container(pod)["resources"]
    gpus = str(gpu_json["gpus_per_pod"])
    assert resources["requests"][gpu_json["gpu_resource_name"]] == gpus
    assert resources["limits"][gpu_json["gpu_resource_name"]] == gpus
    for kind in ("requests", "limits"):
        assert {"cpu", "memory", "ephemeral-storage"} <= set(resources[kind]), kind
    # Guaranteed memory: a training run must not be the one the kernel picks under pressure.
    assert resources["requests"]["memory"] == resources["limits"]["memory"]


def test_pod_runs_restricted_as_the_image_user(pod: dict[str, Any]) -> None:
    user = re.findall(r"^USER\s+(\S+)", dockerfile_final_stage(), flags=re.M)[-1]
    uid, _, gid = user.partition(":")
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == int(uid) and security["runAsGroup"] == int(gid or uid)
    assert security["fsGroup"] == int(gid or uid)
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}

    box = container(pod)["securityContext"]
    assert box["allowPrivilegeEscalation"] is False
    assert box["readOnlyRootFilesystem"] is True
    assert box["capabilities"] == {"drop": ["ALL"]}
    assert not box.get("privileged")
    assert not pod["spec"].get("hostNetwork") and not pod["spec"].get("hostPID")


def test_writable_paths_are_emptydirs(pod: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container(pod)["volumeMounts"]}
    assert {"/scratch", "/tmp", "/dev/shm"} <= set(mounts)
    assert all("emptyDir" in v and v["emptyDir"].get("sizeLimit") for v in mounts.values())
    assert mounts["/dev/shm"]["emptyDir"]["medium"] == "Memory"

    # With a read-only root filesystem, everything the process or the image writes must land on a mount.
    env = {e["name"]: e["value"] for e in container(pod)["env"]}
    stage = dockerfile_final_stage()
    writable = [
        env["HOME"],
        env["TMPDIR"],
        env["MPLCONFIGDIR"],
        env["MAESTRO_HOME"],
        *re.findall(r"^WORKDIR\s+(\S+)", stage, flags=re.M)[-1:],
    ]
    for path in writable:
        assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), f"{path} is not on an emptyDir"


def test_environment_has_the_platform_settings_and_no_secrets(pod: dict[str, Any]) -> None:
    env = {e["name"]: e.get("value") for e in container(pod)["env"]}
    settings = get_settings()
    assert env["MLFLOW_TRACKING_URI"] == MLFLOW
    assert env["MAESTRO_LAKE_URI"] == settings.lake_uri
    assert env["MAESTRO_FEATURES_URI"] == settings.features_uri
    assert env["AWS_REGION"] == "eu-west-1"
    assert "MAESTRO_PII_KEY" not in env and not any(k.startswith("AWS_SECRET") or k == "AWS_ACCESS_KEY_ID" for k in env)
    assert SECRET not in json.dumps(pod)


def test_image_and_command_match_the_training_image(pod: dict[str, Any]) -> None:
    box = container(pod)
    assert box["image"] == IMAGE
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT\s+(.+)$", dockerfile_final_stage(), flags=re.M)[-1])
    assert box["command"] == [*entrypoint, "lightgbm"]
    assert box["args"] == ARGS


def test_operator_lifecycle(pod_operator: Any, pod: dict[str, Any], gpu_json: dict[str, Any]) -> None:
    op = pod_operator
    assert op.pool == gpu_json["airflow_pool"] and op.pool_slots == 1
    assert op.retries == DEFAULT_ARGS["retries"] and op.owner == DEFAULT_ARGS["owner"]
    assert op.get_logs is True
    assert op.on_finish_action.value == "delete_succeeded_pod"
    assert op.reattach_on_restart is True and op.durable is True
    assert op.deferrable is False
    assert op.do_xcom_push is False
    # Long enough for the GPU node group to scale up from zero and pull the image.
    assert op.schedule_timeout_seconds >= 600 and op.startup_timeout_seconds >= 600
    assert op.execution_timeout and pod["spec"]["activeDeadlineSeconds"] <= op.execution_timeout.total_seconds()

    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert labels["dag_id"] == "train_models" and labels["task_id"] == "train_lightgbm"
    assert labels["maestro.ai/model"] == "lightgbm"
    assert annotations["maestro.ai/run-id"] == "manual__2026-11-02T00:00:00+00:00"
    assert annotations["maestro.ai/dag-id"] == "train_models"
    assert annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"


def test_kubernetes_compute_refuses_locations_a_pod_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.orchestration.operators import training_task

    monkeypatch.setenv("MAESTRO_COMPUTE", "kubernetes")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="MAESTRO_LAKE_URI.*local path"):
        training_task("train_lightgbm", "lightgbm", list(ARGS))


def test_gpu_pool_json_is_validated(gpu_json: dict[str, Any]) -> None:
    parse_gpu_pool(gpu_json)
    with pytest.raises(ValueError, match="effect"):
        parse_gpu_pool({**gpu_json, "taint": {**gpu_json["taint"], "effect": "NO_SCHEDULE"}})
    with pytest.raises(ValueError, match="gpus_per_pod"):
        parse_gpu_pool({**gpu_json, "gpus_per_pod": True})
    with pytest.raises(ValueError, match="node_selector"):
        parse_gpu_pool({**gpu_json, "node_selector": {}})


# --- the same DAG wiring on both computes ------------------------------------------------------


@pytest.mark.parametrize("compute", ["local", "kubernetes"])
def test_xcom_arguments_reach_both_computes(compute: str, request: pytest.FixtureRequest) -> None:
    """An upstream task builds the options; both operators render them from XCom into the same list."""
    if compute == "kubernetes":
        request.getfixturevalue("kubernetes_env")
    from airflow.sdk import DAG, task

    from maestro_ml.orchestration.operators import training_task

    with DAG("train_models", schedule=None, start_date=datetime(2026, 11, 1, tzinfo=UTC), default_args=DEFAULT_ARGS):

        @task
        def prepare_training_set() -> list[str]:
            return list(ARGS)

        args = prepare_training_set()
        train: Any = training_task("train_lightgbm", "lightgbm", args)
        templated: Any = training_task("train_templated", "lightgbm", ["--experiment", "{{ run_id }}", args])

    assert train.upstream_task_ids == {"prepare_training_set"}
    assert templated.upstream_task_ids == {"prepare_training_set"}
    ctx = context("train_lightgbm", xcoms={"prepare_training_set": list(ARGS)})
    train.render_template_fields(ctx)
    assert train.arguments == ARGS
    templated.render_template_fields(ctx)
    assert templated.arguments[:2] == ["--experiment", "manual__2026-11-02T00:00:00+00:00"]


def test_local_compute_runs_the_same_command(pod_operator: Any, gpu_json: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.orchestration.operators import LocalTrainingOperator, training_task

    monkeypatch.setenv("MAESTRO_COMPUTE", "local")
    get_settings.cache_clear()
    local = training_task("train_lightgbm", "lightgbm", list(ARGS))
    assert isinstance(local, LocalTrainingOperator)
    # Only the interpreter differs: the image's python there, the worker's here.
    assert local.command == [sys.executable, *pod_operator.cmds[1:]]
    assert local.arguments == pod_operator.arguments
    assert local.retries == pod_operator.retries and local.execution_timeout == pod_operator.execution_timeout
    # Same pool as the pods; a local run takes all of it, so local trainings run one at a time.
    assert local.pool == pod_operator.pool == gpu_json["airflow_pool"]
    assert local.pool_slots == gpu_json["airflow_pool_slots"]


# --- the local process ---------------------------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args if args else msg)

    warning = error = debug = info


@pytest.fixture
def stub_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A stand-in for maestro_ml.training: reports its argv and environment, exits with the asked code."""
    (tmp_path / "stub_training.py").write_text(
        textwrap.dedent(
            """
            import json, os, sys
            import maestro_ml.platform.training_job  # the plugins folder is on the child's path
            print(json.dumps({"argv": sys.argv[1:], "mlflow": os.environ["MLFLOW_TRACKING_URI"]}))
            print("second line", file=sys.stderr)
            code = sys.argv[sys.argv.index("--exit") + 1] if "--exit" in sys.argv else "0"
            sys.exit(int(code))
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "stub_training"


@pytest.fixture
def task_log(monkeypatch: pytest.MonkeyPatch) -> _Log:
    """What the operator writes to its task log."""
    from maestro_ml.orchestration.operators import LocalTrainingOperator

    log = _Log()
    monkeypatch.setattr(LocalTrainingOperator, "log", property(lambda _: log))
    return log


def _local(stub_module: str, arguments: Any) -> Any:
    from maestro_ml.orchestration.operators import LocalTrainingOperator

    return LocalTrainingOperator(
        task_id="train_lightgbm", model="lightgbm", arguments=arguments, module=stub_module, retries=0
    )


def test_local_operator_runs_the_command_and_streams_its_output(stub_module: str, task_log: _Log) -> None:
    _local(stub_module, list(ARGS)).execute(context("train_lightgbm"))
    report = json.loads(next(line for line in task_log.lines if line.startswith("{")))
    assert report == {"argv": ["lightgbm", *ARGS], "mlflow": get_settings().mlflow_tracking_uri}
    assert "second line" in task_log.lines


def test_local_operator_fails_loudly_on_a_non_zero_exit(stub_module: str) -> None:
    from airflow.sdk.exceptions import AirflowException

    op = _local(stub_module, [*ARGS, "--exit", "3"])
    with pytest.raises(AirflowException, match="exit code 3"):
        op.execute(context("train_lightgbm"))


@pytest.mark.parametrize(("code", "says"), [(2, "a usage error"), (3, "too little data")])
def test_a_usage_error_or_too_little_data_fails_without_retries(stub_module: str, code: int, says: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=f"exit code {code} \\({says}"):
        _local(stub_module, [*ARGS, "--exit", str(code)]).execute(context("train_lightgbm"))


def test_any_other_failure_stays_retryable(stub_module: str) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    with pytest.raises(AirflowException, match="exit code 1") as failure:
        _local(stub_module, [*ARGS, "--exit", "1"]).execute(context("train_lightgbm"))
    assert not isinstance(failure.value, AirflowFailException)


def test_local_operator_rejects_arguments_that_are_not_strings(stub_module: str) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        _local(stub_module, None).execute(context("train_lightgbm"))
    with pytest.raises(TypeError, match="strings"):
        _local(stub_module, ["--epochs", 3]).execute(context("train_lightgbm"))
    with pytest.raises(TypeError, match="not the string"):
        _local(stub_module, "--epochs 3")


def test_timeout_bounds_both_computes(kubernetes_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.orchestration.operators import training_task

    pod_op = training_task("t", "lightgbm", list(ARGS), timeout=timedelta(hours=2))
    assert pod_op.execution_timeout == timedelta(hours=2)
    assert pod_op.active_deadline_seconds == 7200  # type: ignore[attr-defined]
    monkeypatch.setenv("MAESTRO_COMPUTE", "local")
    get_settings.cache_clear()
    local_op = training_task("t", "lightgbm", list(ARGS), timeout=timedelta(hours=2))
    assert local_op.execution_timeout == timedelta(hours=2)


def _finished_pod(exit_code: int) -> Any:
    from kubernetes.client import models as k8s

    terminated = k8s.V1ContainerStateTerminated(exit_code=exit_code, reason="Error")
    status = k8s.V1ContainerStatus(name="base", state=k8s.V1ContainerState(terminated=terminated), image="i",
                                   image_id="", ready=False, restart_count=0)
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="train-1", namespace="ml"),
                     status=k8s.V1PodStatus(phase="Failed", container_statuses=[status]))


def _without_cluster(operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("patch_already_checked", "process_pod_deletion", "_read_pod_container_states", "_read_pod_events",
                 "is_istio_enabled"):
        monkeypatch.setattr(operator, name, lambda *a, **k: None)


@pytest.mark.parametrize(("code", "says"), [(2, "a usage error"), (3, "too little data")])
def test_a_pod_exiting_with_a_usage_or_data_floor_code_fails_without_retries(
    pod_operator: Any, monkeypatch: pytest.MonkeyPatch, code: int, says: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    # No cluster here: cleanup's pod API calls answer nothing, the finished pod is as the API reported it.
    _without_cluster(pod_operator, monkeypatch)
    finished = _finished_pod(code)
    with pytest.raises(AirflowFailException, match=f"exit.*code {code} \\({says}"):
        pod_operator.cleanup(finished, finished)


def test_a_pod_failing_otherwise_stays_retryable(pod_operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    _without_cluster(pod_operator, monkeypatch)
    finished = _finished_pod(137)
    with pytest.raises(AirflowException, match="returned a failure") as failure:
        pod_operator.cleanup(finished, finished)
    assert not isinstance(failure.value, AirflowFailException)
