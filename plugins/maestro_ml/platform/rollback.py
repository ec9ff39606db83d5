"""Roll a model's champion back through Airflow's REST API with the official client (``apache-airflow-client``).

An operator's rollback from a terminal, without the UI::

    PYTHONPATH=plugins .venv/bin/python -m maestro_ml.platform.rollback --model task_duration \\
      --reason "p50 drifted after the 2026-12-01 release"

It logs in (``POST /auth/token`` with a username and password, which returns a JWT), triggers
``promote_models`` with ``{"model": ..., "action": "rollback", "reason": ...}`` (the same Params as the
UI's trigger form), polls the run until it ends, prints its state and exits 0 on success, 1 otherwise.
The run itself does the rollback: ``check_params`` refuses a rollback without a reason (the run fails
there, without retries), ``apply_decision`` points ``champion`` back at ``previous_champion`` and appends
an audit record whose ``who`` is the user who triggered the run
(``python -m maestro_ml.registry history <model>`` prints it).

The Airflow URL defaults to ``AIRFLOW__API__BASE_URL`` (what ``make up`` sets) or http://localhost:8080;
the user and password to ``admin`` / ``admin``, ``make up``'s. The end-to-end tests run this command
against a ``make up`` stack. The client is imported inside the functions: the production images install
``requirements.txt`` only, where the client (a dev requirement) is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from maestro_ml.contracts.models import MODELS

DAG_ID = "promote_models"
FINISHED = ("success", "failed")
DEFAULT_BASE_URL = "http://localhost:8080"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    state: str
    url: str
    failed_tasks: tuple[str, ...] = ()


def access_token(base_url: str, username: str, password: str, timeout: float = 30) -> str:
    """A JWT for the REST API: ``POST /auth/token`` with a JSON username and password (Airflow 3's auth managers)."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/auth/token", method="POST",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(json.loads(response.read())["access_token"])
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"login as {username!r} at {base_url} failed: {exc.code} {exc.read().decode(errors='replace')}"
                           ) from exc


def api_client(base_url: str, token: str) -> Any:
    """An ``airflow_client.client.ApiClient`` for ``base_url``, authenticated with ``token`` (use it as a context)."""
    import airflow_client.client as airflow_client

    return airflow_client.ApiClient(airflow_client.Configuration(host=base_url.rstrip("/"), access_token=token))


def trigger_rollback(client: Any, model: str, reason: str | None, run_id: str | None = None) -> str:
    """Trigger ``promote_models`` with a rollback request; the new run's id.

    ``reason`` None is sent as it is: the run then fails at ``check_params`` (a manual rollback needs one).
    """
    import airflow_client.client as airflow_client

    conf: dict[str, Any] = {"model": model, "action": "rollback", "reason": reason}
    # Airflow 3: no logical date for a manual run (null), so two triggers never collide on one.
    body = airflow_client.TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=None, conf=conf,
                                                note=f"rollback of {model}: {reason or '(no reason given)'}")
    return str(airflow_client.DagRunApi(client).trigger_dag_run(DAG_ID, body).dag_run_id)


def wait_for_run(client: Any, run_id: str, timeout: float = 900, poll: float = 5,
                 echo: Any = None) -> tuple[str, tuple[str, ...]]:
    """Poll the run until it succeeds or fails; its state and the ids of its failed tasks."""
    import airflow_client.client as airflow_client

    runs, tasks = airflow_client.DagRunApi(client), airflow_client.TaskInstanceApi(client)
    deadline, seen = time.monotonic() + timeout, ""
    while True:
        state = str(getattr(runs.get_dag_run(DAG_ID, run_id).state, "value", ""))
        if state != seen and echo:
            echo(f"{DAG_ID} {run_id}: {state}")
        seen = state
        if state in FINISHED:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{DAG_ID} {run_id} still {state} after {timeout:.0f}s")
        time.sleep(poll)
    instances = tasks.get_task_instances(DAG_ID, run_id).task_instances
    failed = tuple(sorted({t.task_id for t in instances if getattr(t.state, "value", None) == "failed"}))
    return state, failed


def rollback(model: str, reason: str | None, base_url: str = DEFAULT_BASE_URL, username: str = "admin",
             password: str = "admin", timeout: float = 900, poll: float = 5, echo: Any = print) -> RunResult:
    """Log in, trigger the rollback of ``model``'s champion, wait for the run; its id, state and failed tasks."""
    import airflow_client.client as airflow_client

    base_url = base_url.rstrip("/")
    with api_client(base_url, access_token(base_url, username, password)) as client:
        if airflow_client.DAGApi(client).get_dag(DAG_ID).is_paused and echo:
            echo(f"warning: {DAG_ID} is paused: the run waits until it is unpaused")
        run_id = trigger_rollback(client, model, reason)
        url = f"{base_url}/dags/{DAG_ID}/runs/{run_id}"
        if echo:
            echo(f"triggered {DAG_ID} {run_id}: roll {model} back ({url})")
        state, failed = wait_for_run(client, run_id, timeout, poll, echo)
    return RunResult(run_id, state, url, failed)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m maestro_ml.platform.rollback",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True, choices=sorted(MODELS), help="the model whose champion to roll back")
    parser.add_argument("--reason", required=True, help="why: kept in the audit trail and on the version's tags")
    parser.add_argument("--base-url", default=os.environ.get("AIRFLOW__API__BASE_URL") or DEFAULT_BASE_URL,
                        help="Airflow's URL (default: AIRFLOW__API__BASE_URL or %(default)s)")
    parser.add_argument("--username", default=os.environ.get("AIRFLOW_USERNAME", "admin"),
                        help="Airflow user (default: AIRFLOW_USERNAME or admin)")
    parser.add_argument("--password", default=os.environ.get("AIRFLOW_PASSWORD", "admin"),
                        help="its password (default: AIRFLOW_PASSWORD or admin)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.reason.strip():
        parser.error("--reason must say why")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = rollback(args.model, args.reason, args.base_url, args.username, args.password, args.timeout)
    if result.state == "success":
        print(f"rolled back: {DAG_ID} {result.run_id} succeeded; "
              f"`python -m maestro_ml.registry history {args.model}` shows the record")
        return 0
    print(f"{DAG_ID} {result.run_id} {result.state}; failed tasks: {', '.join(result.failed_tasks) or '-'}; "
          f"logs: {result.url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
