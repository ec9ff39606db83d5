"""Where a training run executes, chosen by ``MAESTRO_COMPUTE``; the DAG code is the same for both.

``kubernetes`` gives a KubernetesPodOperator that runs the training image on the GPU node pool
(``include/gpu_node_pool.json``); ``local`` (the default) gives ``LocalTrainingOperator``, which runs
the same command in a child process of the worker. This module imports Airflow, so only DAG files
import it; the pure parts (pool, resources, environment, command) live in ``maestro_ml.platform.training_job``.

How per-run values (URIs from upstream tasks) reach both computes: ``training_task`` splits the
command in two. The fixed part, ``python -m maestro_ml.training <model>``, is known at parse time
(the pod's ``cmds``). The per-run options go to a *templated* field of either operator (the pod's
``arguments``, ``LocalTrainingOperator.arguments``), so a DAG passes them in one of two ways that
both operators render identically before they run:

* an ``XComArg`` resolving to the whole list, typically an upstream ``@task`` returning
  ``maestro_ml.platform.training_job.training_arguments(...)`` (recommended: the options are built, and
  testable, in Python; the dependency on the upstream task is set automatically);
* a list of strings, any of which may be a Jinja template (``"{{ ti.xcom_pull(...) }}"``) or an
  ``XComArg`` resolving to one string.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, XComArg
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from maestro_ml.contracts.models import NOT_RETRYABLE_EXITS
from maestro_ml.orchestration.defaults import DEFAULT_ARGS
from maestro_ml.platform.training_job import (
    SCRATCH_DIR,
    SHM_DIR,
    TMP_DIR,
    TRAINING_GID,
    TRAINING_MODULE,
    TRAINING_UID,
    GpuPool,
    TrainingResources,
    check_arguments,
    check_model_name,
    container_resources,
    get_gpu_pool,
    pod_scratch_env,
    pod_visibility_problems,
    training_command,
    training_env,
)
from maestro_ml.settings import PLUGINS_DIR, Settings, get_settings

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import Context

# Per-run options: a list (items may be Jinja templates or XComArgs of one string), or one XComArg of the list.
TrainingArgs = Sequence[str | XComArg] | XComArg


# The GPU node group scales from zero: scheduling waits for a node to boot and join (cluster
# autoscaler, several minutes), then the multi-GB training image is pulled onto a fresh disk.
SCHEDULE_TIMEOUT_SECONDS = 15 * 60
STARTUP_TIMEOUT_SECONDS = 15 * 60
# Time for the training process to react to SIGTERM (flush a checkpoint, close the MLflow run).
TERMINATION_GRACE_SECONDS = 60
DEFAULT_TIMEOUT = timedelta(hours=6)
# Failed pods stay for `kubectl describe/logs`; they hold no GPU once terminated.
ON_FINISH_ACTION = "delete_succeeded_pod"


def training_task(
    task_id: str,
    model: str,
    args: TrainingArgs,
    *,
    resources: TrainingResources | None = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
    deferrable: bool = False,
    **kwargs: Any,
) -> BaseOperator:
    """A task running ``python -m maestro_ml.training <model> <args...>`` on the configured compute.

    ``args`` are the per-run options (see the module docstring for how XCom values reach them).
    ``timeout`` bounds the task and, on Kubernetes, the pod itself, so a pod never outlives its task
    even if the worker dies. ``deferrable`` only applies to Kubernetes and needs a triggerer.
    Other keyword arguments go to the operator; they override the platform's ``DEFAULT_ARGS``.
    """
    settings = get_settings()
    task_kwargs: dict[str, Any] = {**DEFAULT_ARGS, "execution_timeout": timeout, **kwargs}
    if settings.compute == "kubernetes":
        return training_pod_operator(
            task_id=task_id,
            model=model,
            args=args,
            settings=settings,
            pool=get_gpu_pool(),
            resources=resources,
            timeout=timeout,
            deferrable=deferrable,
            **task_kwargs,
        )
    # The same pool as the pods, but a local run takes every slot: one training process already uses
    # all the machine's cores (LightGBM and torch threads), so a second one would only slow both down
    # and double the peak memory. Trainings queue one at a time instead. The scheduler never runs a
    # task whose pool is missing, so `python -m maestro_ml.platform.bootstrap` creates it wherever Airflow is
    # set up (make up, make demo, compose, the Helm migration job); dag.test() does not look at pools.
    gpu_pool = get_gpu_pool()
    local_kwargs = {"pool": gpu_pool.airflow_pool, "pool_slots": gpu_pool.airflow_pool_slots, **task_kwargs}
    return LocalTrainingOperator(task_id=task_id, model=model, arguments=args, **local_kwargs)


def training_pod_operator(
    *,
    task_id: str,
    model: str,
    args: TrainingArgs,
    settings: Settings,
    pool: GpuPool,
    resources: TrainingResources | None,
    timeout: timedelta,
    deferrable: bool,
    **kwargs: Any,
) -> KubernetesPodOperator:
    """The training pod, production-shaped: GPU node pool, IRSA, restricted security, bounded in time."""
    # Imported here so local-compute DAG files never load the Kubernetes client while parsing.
    from kubernetes.client import models as k8s

    from maestro_ml.orchestration.pod_operator import TrainingPodOperator

    problems = pod_visibility_problems(settings)
    if problems:
        # Fails the DAG import, visibly in the UI, instead of a run that trains and then loses the model.
        raise ValueError("MAESTRO_COMPUTE=kubernetes needs locations a pod can reach: " + "; ".join(problems))

    env = {**training_env(settings, os.environ), **pod_scratch_env()}
    requirements = container_resources(pool, resources)
    sizes = resources or TrainingResources()
    return TrainingPodOperator(
        task_id=task_id,
        namespace=pool.namespace,
        image=settings.training_image,
        # The image's ENTRYPOINT spelled out, so pod and local runs share one command list.
        cmds=training_command(model),
        # A template field: an XComArg here is resolved to its list when the task renders.
        arguments=_templated(args),  # type: ignore[arg-type]
        env_vars=[k8s.V1EnvVar(name=name, value=value) for name, value in sorted(env.items())],
        container_resources=k8s.V1ResourceRequirements(
            requests=requirements["requests"], limits=requirements["limits"]
        ),
        node_selector=dict(pool.node_selector),
        tolerations=[
            k8s.V1Toleration(
                key=pool.toleration.key,
                operator=pool.toleration.operator,
                value=pool.toleration.value,
                effect=pool.toleration.effect,
            )
        ],
        # IRSA: the service account's role gives S3 access; the IAM token is projected by EKS's
        # webhook, so the Kubernetes API token (training never calls the API) stays unmounted.
        service_account_name=pool.service_account,
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=TRAINING_UID,
            run_as_group=TRAINING_GID,
            # Makes the emptyDirs and the projected IAM token readable by the non-root user.
            fs_group=TRAINING_GID,
            fs_group_change_policy="OnRootMismatch",
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        volumes=[
            k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=sizes.scratch_size)),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=sizes.tmp_size)),
            # The container runtime's default /dev/shm is 64 MiB, too small for torch DataLoader workers.
            k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=sizes.shm_size)),
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH_DIR),
            k8s.V1VolumeMount(name="tmp", mount_path=TMP_DIR),
            k8s.V1VolumeMount(name="dshm", mount_path=SHM_DIR),
        ],
        # The operator adds dag_id, task_id, run_id and try_number labels itself (it finds its pod by them).
        labels={
            "app.kubernetes.io/name": "maestro-training",
            "app.kubernetes.io/part-of": "maestro-ml",
            "app.kubernetes.io/managed-by": "airflow",
            "maestro.ai/model": check_model_name(model),
        },
        # Labels are sanitized to 63 characters; annotations keep the exact ids and the way back to the log.
        annotations={
            "maestro.ai/dag-id": "{{ dag.dag_id }}",
            "maestro.ai/task-id": "{{ ti.task_id }}",
            "maestro.ai/run-id": "{{ run_id }}",
            "maestro.ai/try-number": "{{ ti.try_number }}",
            "maestro.ai/airflow-log-url": "{{ ti.log_url }}",
            # Scaling the GPU node down would kill hours of training.
            "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        },
        schedule_timeout_seconds=SCHEDULE_TIMEOUT_SECONDS,
        startup_timeout_seconds=STARTUP_TIMEOUT_SECONDS,
        active_deadline_seconds=int(timeout.total_seconds()),
        termination_grace_period=TERMINATION_GRACE_SECONDS,
        get_logs=True,
        log_events_on_failure=True,
        on_finish_action=ON_FINISH_ACTION,
        # A retry after a worker crash reattaches to the running pod instead of starting a second one.
        # `durable` is the Airflow 3.3 name of `reattach_on_restart`, which it sets (and deprecates).
        durable=True,
        deferrable=deferrable,
        do_xcom_push=False,
        # GPU runs queue in the Airflow pool instead of piling up as Pending pods.
        pool=pool.airflow_pool,
        pool_slots=1,
        **kwargs,
    )


def _templated(args: TrainingArgs) -> list[str | XComArg] | XComArg:
    """A fresh list for the operator to render in place (never the caller's, which other tasks may share)."""
    if isinstance(args, XComArg) or args is None:
        return args
    if isinstance(args, str):
        # list("--epochs 3") would pass one character per argument.
        raise TypeError(f"training arguments must be a list of strings or an XComArg, not the string {args!r}")
    return list(args)


class LocalTrainingOperator(BaseOperator):
    """The ``local`` compute: runs the training command in a child process of the worker.

    Output is streamed line by line to the task log; a non-zero exit fails the task (retries apply,
    as for a failed pod). The child gets its own process group so a timeout or a kill from the UI
    also stops the DataLoader workers it started.
    """

    template_fields: Sequence[str] = ("arguments",)
    ui_color = "#f0e4ff"

    def __init__(
        self,
        *,
        model: str,
        arguments: TrainingArgs,
        module: str = TRAINING_MODULE,
        python: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = check_model_name(model)
        self.arguments = _templated(arguments)
        self.module = module
        # None: the worker's own interpreter, resolved when the task runs (not where the DAG was parsed).
        self.python = python
        self._process: subprocess.Popen[str] | None = None

    @property
    def command(self) -> list[str]:
        return training_command(self.model, self.python or sys.executable, self.module)

    def child_env(self) -> dict[str, str]:
        existing = os.environ.get("PYTHONPATH", "")
        return {
            **os.environ,
            **training_env(get_settings(), os.environ),
            "PYTHONPATH": os.pathsep.join([str(PLUGINS_DIR), *([existing] if existing else [])]),
        }

    def execute(self, context: Context) -> None:
        command = [*self.command, *check_arguments(self.arguments)]
        self.log.info("Running %s", shlex.join(command))
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            env=self.child_env(),
            start_new_session=True,
        )
        self._process = process
        try:
            assert process.stdout is not None
            for line in process.stdout:
                self.log.info("%s", line.rstrip("\n"))
            returncode = process.wait()
        finally:
            # Reached with the child still running when the task times out or is killed mid-stream.
            if process.poll() is None:
                self._stop(process)
            self._process = None
        if returncode in NOT_RETRYABLE_EXITS:
            # A usage error or too little data fails the same way on every try: fail now, say what to change.
            raise AirflowFailException(
                f"training {self.model!r} failed with exit code {returncode} ({NOT_RETRYABLE_EXITS[returncode]}); "
                f"not retried. See the log above. {shlex.join(command)}"
            )
        if returncode != 0:
            reason = f"exit code {returncode}"
            if returncode < 0:
                with contextlib.suppress(ValueError):
                    reason = f"signal {signal.Signals(-returncode).name}"
            raise AirflowException(f"training {self.model!r} failed with {reason}: {shlex.join(command)}")

    def on_kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._stop(self._process)

    def _stop(self, process: subprocess.Popen[str]) -> None:
        """SIGTERM the child's process group, as Kubernetes would, then SIGKILL after the same grace period."""
        for sig, wait in ((signal.SIGTERM, TERMINATION_GRACE_SECONDS), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue
