"""The distributed stack of issue 15, started for real on loopback: one definition, used by the e2e test.

Services (the names follow the compose file's):

* ``object-store``: moto's S3 server. Landing, lake, quarantine, the Feast offline store (the features
  under the lake) and MLflow's artifacts are ``s3://`` URIs in one throwaway bucket.
* ``mlflow``: the tracking server on a throwaway PostgreSQL database, artifacts proxied to that S3.
* ``airflow-init``: ``airflow db migrate`` on a throwaway PostgreSQL database, then the training pool
  and ``feast apply`` to the SQL registry (``maestro_ml.platform.bootstrap init``).
* ``airflow-apiserver``, ``airflow-scheduler``, ``airflow-dag-processor``, ``airflow-triggerer``.
* ``airflow-worker-1``, ``airflow-worker-2``: Celery workers (broker: a free Redis database), each in
  its own working directory with its own ``MAESTRO_HOME`` and ``AIRFLOW_HOME``, so no task can read a
  file another worker wrote locally. Each records its own host name on the task instances
  (``maestro_ml.platform.hostname``).

Feast runs with ``MAESTRO_FEAST_ENV=server``: its registry on a throwaway PostgreSQL database, its online
store in another free Redis database. Everything is removed again by ``DistributedStack.stop``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
WORKERS = ("airflow-worker-1", "airflow-worker-2")
# Who may do what through the REST API (Airflow's simple auth manager): an operator and a read-only user.
USERS = {"operator": ("admin", "operator-pw"), "auditor": ("viewer", "auditor-pw")}
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _free_redis_dbs(count: int) -> list[int]:
    """``count`` empty Redis databases (1-15), claimed with a marker key so a parallel run picks others."""
    import redis

    claimed: list[int] = []
    for db in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.dbsize() == 0 and client.set("maestro-e2e-claim", "1", nx=True, ex=3600):
            claimed.append(db)
            if len(claimed) == count:
                return claimed
    raise RuntimeError("no free Redis database among 1-15 for the distributed e2e stack")


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class DistributedStack:
    root: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    services: dict[str, Service] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    redis_dbs: dict[str, int] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ names and settings

    @property
    def bucket(self) -> str:
        return f"maestro-e2e-{self.run_id}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['object-store']}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow-apiserver']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    def pg_uri(self, name: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:5432/{self.databases[name]}"

    def s3_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": "e2e",
            "AWS_SECRET_ACCESS_KEY": "e2e-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": self.s3_endpoint,
        }

    def maestro_env(self) -> dict[str, str]:
        """The settings every process that runs DAG code gets (``maestro_ml.settings`` reads them)."""
        s3 = f"s3://{self.bucket}"
        return {
            **self.s3_env(),
            "MAESTRO_LANDING_URI": f"{s3}/landing",
            "MAESTRO_LAKE_URI": f"{s3}/lake",
            "MAESTRO_QUARANTINE_URI": f"{s3}/quarantine",
            "MAESTRO_TRUTH_URI": f"{s3}/truth",
            "MAESTRO_REPORTS_URI": f"{s3}/reports",
            "MAESTRO_FEAST_ENV": "server",
            "MAESTRO_FEAST_PROJECT": f"maestro_e2e_{self.run_id}",
            "MAESTRO_FEAST_REGISTRY_SQL_URI": self.pg_uri("feast"),
            "MAESTRO_REDIS_CONNECTION": f"{REDIS_HOST}:{REDIS_PORT},db={self.redis_dbs['online']}",
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MAESTRO_PII_KEY": self.pii_key,
            "MAESTRO_START_DATE": self.start_date,
            "MAESTRO_BATCH_NICE": "0",
            # The loop runs on two days of data: the duration holdout may not wait two more for outcomes.
            "MAESTRO_DURATION_OUTCOME_MATURITY_HOURS": "0",
        }

    def airflow_env(self) -> dict[str, str]:
        api = self.base_url
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg_uri("airflow"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_dbs['broker']}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.pg_uri("airflow"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "maestro_ml.platform.hostname.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{role}" for u, (role, _) in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.root / "passwords.json"),
            "AIRFLOW__API__PORT": str(self.ports["airflow-apiserver"]),
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__SECRET_KEY": self.api_secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "PYTHONPATH": str(REPO / "plugins"),
        }

    def process_env(self, name: str) -> dict[str, str]:
        """A clean environment (nothing of the test session's settings) plus the stack's, for one service."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "MAESTRO_", "MLFLOW_", "FEAST_", "AWS_")) and k != "PYTHONPATH"}
        home = self.root / name
        env = {**base, **self.maestro_env(), **self.airflow_env(),
               "MAESTRO_HOME": str(home / "maestro"), "AIRFLOW_HOME": str(home / "airflow"),
               "PATH": f"{BIN}:{base.get('PATH', '')}"}
        if name in WORKERS:
            env["MAESTRO_WORKER_NAME"] = name
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(self.ports[f"{name}-logs"])
        return env

    # ------------------------------------------------------------------ lifecycle

    def __post_init__(self) -> None:
        self.pii_key = secrets.token_hex(16)
        self.fernet_key = _fernet_key()
        self.api_secret = secrets.token_urlsafe(24)
        self.jwt_secret = secrets.token_urlsafe(24)
        self.start_date = ""

    def _add(self, name: str, command: list[str]) -> Service:
        workdir = self.root / name
        (workdir / "maestro").mkdir(parents=True, exist_ok=True)
        (workdir / "airflow").mkdir(parents=True, exist_ok=True)
        service = Service(name, command, self.process_env(name), workdir, self.root / "logs" / f"{name}.log")
        self.services[name] = service
        return service

    def _launch(self, service: Service) -> None:
        service.log.parent.mkdir(parents=True, exist_ok=True)
        with open(service.log, "ab") as out:
            service.process = subprocess.Popen(service.command, cwd=service.cwd, env=service.env, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True)

    def run_once(self, name: str, command: list[str], timeout: float = 300) -> None:
        service = self._add(name, command)
        service.log.parent.mkdir(parents=True, exist_ok=True)
        with open(service.log, "ab") as out:
            done = subprocess.run(command, cwd=service.cwd, env=service.env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} ({' '.join(command)}) exited {done.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        log = self.root / "logs" / f"{name}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"

    def wait(self, what: str, check: Callable[[], Any], timeout: float, poll: float = 2.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services.values():
                if service.process is not None and service.process.poll() is not None:
                    raise AssertionError(f"{service.name} exited with {service.process.returncode}:\n"
                                         f"{self.tail(service.name)}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                result = check()
                if result:
                    return result
            time.sleep(poll)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; logs in {self.root / 'logs'}")

    def start(self, start_date: str, land: Callable[[DistributedStack], None] | None = None) -> None:
        """Everything up, in dependency order; ``land`` puts events into S3 before ``airflow-init`` runs."""
        self.start_date = start_date
        for name in ("object-store", "mlflow", "airflow-apiserver", *(f"{w}-logs" for w in WORKERS)):
            self.ports[name] = free_port()
        dbs = _free_redis_dbs(2)
        self.redis_dbs = {"broker": dbs[0], "online": dbs[1]}
        for kind in ("airflow", "mlflow", "feast"):
            self.databases[kind] = f"maestro_e2e_{kind}_{self.run_id}"
            _psql(f'CREATE DATABASE "{self.databases[kind]}"')
        (self.root / "passwords.json").write_text(json.dumps({u: pw for u, (_, pw) in USERS.items()}))

        store = self._add("object-store", [str(BIN / "moto_server"), "-H", "127.0.0.1",
                                           "-p", str(self.ports["object-store"])])
        self._launch(store)
        self.wait("the S3 server", lambda: urllib.request.urlopen(self.s3_endpoint, timeout=2).status < 500, 60, 0.5)
        import boto3

        boto3.client("s3", endpoint_url=self.s3_endpoint, aws_access_key_id="e2e", aws_secret_access_key="e2e-secret",
                     region_name="us-east-1").create_bucket(Bucket=self.bucket)
        if land is not None:
            land(self)

        mlflow = self._add("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", self.pg_uri("mlflow"),
                                      "--artifacts-destination", f"s3://{self.bucket}/mlflow",
                                      "--host", "127.0.0.1", "--port", str(self.ports["mlflow"]), "--workers", "1"])
        mlflow.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        self._launch(mlflow)

        self.run_once("airflow-init", [str(BIN / "airflow"), "db", "migrate"])
        init = self.services["airflow-init"]
        done = subprocess.run([sys.executable, "-m", "maestro_ml.platform.bootstrap", "init"], cwd=init.cwd,
                              env=init.env, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"bootstrap init failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

        self._launch(self._add("airflow-apiserver", [str(BIN / "airflow"), "api-server",
                                                     "--port", str(self.ports["airflow-apiserver"])]))
        self.wait("the api-server", lambda: urllib.request.urlopen(
            f"{self.base_url}/api/v2/monitor/health", timeout=5).status == 200, STARTUP_TIMEOUT_S)
        self.wait("MLflow", lambda: urllib.request.urlopen(f"{self.mlflow_url}/health", timeout=5).status == 200,
                  STARTUP_TIMEOUT_S)
        for name, command in (
            ("airflow-scheduler", ["scheduler"]),
            ("airflow-dag-processor", ["dag-processor"]),
            ("airflow-triggerer", ["triggerer"]),
            *((w, ["celery", "worker", "--celery-hostname", f"{w}@%h", "--concurrency", "2"]) for w in WORKERS),
        ):
            self._launch(self._add(name, [str(BIN / "airflow"), *command]))
        self.wait("the scheduler, triggerer and dag-processor to report healthy", self._components_healthy,
                  STARTUP_TIMEOUT_S)
        for worker in WORKERS:
            self.wait(f"{worker} to be ready", lambda w=worker: " ready." in self.tail(w, 400), STARTUP_TIMEOUT_S)

    def _components_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as response:
            health = json.loads(response.read())
        return all(health.get(c, {}).get("status") == "healthy" for c in ("scheduler", "triggerer", "dag_processor"))

    def stop(self) -> None:
        """Stop every process (its whole group), then drop the databases, the Redis databases and the bucket."""
        running = [s for s in self.services.values() if s.process is not None and s.process.poll() is None]
        for service in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        for service in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        for name in self.databases.values():
            with contextlib.suppress(Exception):
                _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis

        for db in self.redis_dbs.values():
            with contextlib.suppress(Exception):
                redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db).flushdb()

    # ------------------------------------------------------------------ clients

    def token(self, user: str = "operator") -> str:
        from maestro_ml.platform.rollback import access_token

        return access_token(self.base_url, user, USERS[user][1])

    @contextlib.contextmanager
    def client(self, user: str = "operator") -> Iterator[Any]:
        from maestro_ml.platform.rollback import api_client

        with api_client(self.base_url, self.token(user)) as client:
            yield client


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
