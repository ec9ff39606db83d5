"""The training pod's operator: a ``KubernetesPodOperator`` that does not retry what no retry can fix.

Its own module so that only ``MAESTRO_COMPUTE=kubernetes`` DAG files load the Kubernetes client.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from maestro_ml.contracts.models import NOT_RETRYABLE_EXITS


def container_exit_code(remote_pod: Any, container_name: str) -> int | None:
    """The exit code of ``container_name`` in the pod as the API last reported it, if it terminated."""
    statuses = (remote_pod.status.container_statuses if remote_pod and remote_pod.status else None) or []
    for status in statuses:
        if status.name == container_name and status.state and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return None


class TrainingPodOperator(KubernetesPodOperator):
    """Fails without retries when the training container exits with a usage or too-little-data code."""

    def cleanup(self, pod: Any, remote_pod: Any, xcom_result: dict | None = None, context: Any = None) -> None:
        try:
            super().cleanup(pod, remote_pod, xcom_result, context)
        except AirflowException as exc:
            code = container_exit_code(remote_pod, self.base_container_name)
            if code in NOT_RETRYABLE_EXITS:
                raise AirflowFailException(
                    f"training pod exited with code {code} ({NOT_RETRYABLE_EXITS[code]}); not retried. {exc}"
                ) from exc
            raise
