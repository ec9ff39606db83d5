"""The compose stack and the Helm values, checked offline against their published schemas and the code.

* ``docker-compose.yaml`` validates against the Compose Specification's JSON schema (vendored in
  docker/schema/) once its ``${VAR...}`` interpolations hold sample values; every environment
  variable the code reads (taken from ``maestro_ml.settings`` and ``training_job.PASSTHROUGH_ENV``,
  never from a list copied here) is set for every Airflow service, and with it the settings load;
  every service has a healthcheck and waits on conditions; secrets come from ``.env`` only.
* ``include/helm/values.yaml`` validates against the official chart's ``values.schema.json``
  (vendored next to it), and every Secret it names is created by ``include/helm/external-secrets.yaml``.

No Docker, Helm or cluster is needed; tests/integration/test_infra_tools.py runs ``docker compose config``
where Docker is installed.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from maestro_ml.platform.training_job import PASSTHROUGH_ENV
from maestro_ml.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / "docker" / ".env.example"
COMPOSE_SCHEMA = REPO / "docker" / "schema" / "compose-spec.json"
POSTGRES_INIT = REPO / "docker" / "postgres" / "init-databases.sql"
SETTINGS_SOURCE = REPO / "plugins" / "maestro_ml" / "settings.py"
HELM = REPO / "include" / "helm"
HELM_VALUES = HELM / "values.yaml"
EXTERNAL_SECRETS = HELM / "external-secrets.yaml"

# Conventional names (the official Airflow compose file's, and the distributed e2e stack's).
INFRA_SERVICES = {"postgres", "redis", "object-store", "bucket-init", "mlflow"}
DAG_CODE_SERVICES = {"airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"}
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", *DAG_CODE_SERVICES}
ONE_SHOT_SERVICES = {"bucket-init", "airflow-init"}
CONDITIONS = {"service_healthy", "service_completed_successfully"}

# Names whose values are secrets (or credentials) wherever they appear.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|PII_KEY|TOKEN|ACCESS_KEY|ROOT_USER")
REQUIRED_VAR = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")
# $$ (a literal $), ${NAME}, ${NAME<op>arg} with op one of :- - :? ? :+ +, or a bare $NAME.
INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
# An ECR repository; CHANGE-ME marks what values-<env>.yaml fills in (the account, terraform's name_prefix).
ECR_REPOSITORY = re.compile(r"^[^/\s]+\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(/([a-z0-9._-]+|CHANGE-ME))+$")
ROLE_ARN = re.compile(r"^arn:aws:iam::[^:\s]+:role/\S+$")


# --- helpers: interpolation -------------------------------------------------------------------


class MissingVariable(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string (https://docs.docker.com/reference/compose-file/interpolation/)."""

    def replace(match: re.Match[str]) -> str:
        if match.group() == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        present, non_empty = name in env, bool(env.get(name))
        if op in (":?", "?"):
            if non_empty if op == ":?" else present:
                return env[name]
            raise MissingVariable(name, arg)
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if present else arg
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if present else ""
        return env.get(name, "")

    return INTERPOLATION.sub(replace, text)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    """The whole loaded file with every string (keys too) interpolated."""
    if isinstance(node, dict):
        return {resolve(k, env): resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def variables(node: Any, ops: tuple[str | None, ...]) -> set[str]:
    """Names interpolated anywhere in ``node`` with one of the operators ``ops`` (None: plain ${NAME} or $NAME)."""
    found = set()
    for text in strings(node):
        for match in INTERPOLATION.finditer(text):
            if match.group() != "$$" and match.group("op") in ops:
                found.add(match.group("name") or match.group("bare"))
    return found


def env_example() -> dict[str, str]:
    """``NAME=value`` lines of docker/.env.example (commented-out ones excluded)."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            pairs[name.strip()] = value.strip()
    return pairs


def sample_env() -> dict[str, str]:
    """What a filled-in .env holds: the example's values, a sample for each blank (a secret)."""
    return {name: value or f"sample-{name.lower().replace('_', '-')}" for name, value in env_example().items()}


def compose_raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def compose() -> dict[str, Any]:
    resolved: dict[str, Any] = resolve(compose_raw(), sample_env())
    return resolved


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the list form: NAME=value
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


# --- helpers: the settings the code reads -----------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable maestro_ml.settings reads, from its source (``_env("NAME", ...)``,
    ``os.environ.get("NAME")`` and the ``*_env_var`` field defaults), so a new setting is checked at once."""
    tree = ast.parse(SETTINGS_SOURCE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            reader = (isinstance(func, ast.Name) and func.id == "_env") or (
                isinstance(func, ast.Attribute) and func.attr in ("get", "getenv")
                and isinstance(func.value, ast.Attribute | ast.Name)
                and (getattr(func.value, "attr", None) == "environ" or getattr(func.value, "id", None) == "os")
            )
            first = node.args[0]
            if reader and isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
              and node.target.id.endswith("_env_var") and isinstance(node.value, ast.Constant)):
            names.add(str(node.value.value))
    return names


def code_env_names() -> set[str]:
    """The settings plus the non-secret variables the training launcher passes through (AWS region, S3 endpoints)."""
    return settings_env_names() | set(PASSTHROUGH_ENV)


def load_settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith(("MAESTRO_", "MLFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


# --- helpers: Helm ------------------------------------------------------------------------------


def helm_values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HELM_VALUES.read_text())
    return data


def helm_schema() -> tuple[str, dict[str, Any]]:
    """(chart version, schema) of the one vendored values.schema-<version>.json."""
    files = sorted(HELM.glob("values.schema-*.json"))
    assert len(files) == 1, f"vendor exactly one chart schema in {HELM}: {files}"
    version = files[0].name.removeprefix("values.schema-").removesuffix(".json")
    schema: dict[str, Any] = json.loads(files[0].read_text())
    return version, schema


def external_secrets() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(EXTERNAL_SECRETS.read_text()) if doc]


def secret_refs(values: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(Secret, key) of every existing Secret the values make the chart read (the chart's fixed key names)."""
    refs = {
        (values["data"]["metadataSecretName"], "connection"),
        (values["fernetKeySecretName"], "fernet-key"),
        (values["apiSecretKeySecretName"], "api-secret-key"),
        (values["jwtSecretName"], "jwt-secret"),
    }
    refs |= {(item["secretName"], item["secretKey"]) for item in values.get("secret", [])}
    return refs


def service_accounts(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Component path -> serviceAccount block, for every component that declares one (one level of nesting)."""
    found = {}
    for name, block in values.items():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("serviceAccount"), dict):
            found[name] = block["serviceAccount"]
        for sub, inner in block.items():
            if isinstance(inner, dict) and isinstance(inner.get("serviceAccount"), dict):
                found[f"{name}.{sub}"] = inner["serviceAccount"]
    return found


# --- docker-compose.yaml: the schema, interpolation and .env.example ---------------------------


def test_compose_file_matches_the_compose_specification_schema() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator_class: Any = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_would_catch_a_mistake() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    broken = compose()
    broken["services"]["redis"]["depends_on"] = {"postgres": {"condition": "service_ready"}}
    broken["services"]["mlflow"]["healthcheck"]["intervall"] = "5s"
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_compose_refuses_to_start_without_each_required_variable() -> None:
    raw = compose_raw()
    required = variables(raw, (":?", "?"))
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "MAESTRO_PII_KEY", "AIRFLOW_FERNET_KEY"} <= required
    env = sample_env()
    for name in sorted(required):
        with pytest.raises(MissingVariable) as missing:
            resolve(raw, {k: v for k, v in env.items() if k != name})
        assert missing.value.name == name


def test_env_example_lists_every_variable_the_compose_file_uses() -> None:
    raw = compose_raw()
    required = variables(raw, (":?", "?"))
    listed = env_example()
    assert sorted(required - set(listed)) == [], "docker/.env.example misses required variables"
    assert sorted(set(listed) - variables(raw, (":?", "?", ":-", "-", None))) == [], "stale .env.example entries"
    # The example holds no secret: every secret is left blank for the developer to fill in.
    for name, value in listed.items():
        if name in required or SECRET_NAME.search(name):
            assert value == "", f".env.example: {name} must be blank"
    # Optional overrides (${NAME:-default}) are documented, commented out.
    text = ENV_EXAMPLE.read_text()
    for name in sorted(variables(raw, (":-", "-")) - set(listed)):
        assert re.search(rf"^# {name}=", text, re.M), f".env.example does not document {name}"
    # A plain ${NAME} would start the stack with an empty value instead of refusing.
    assert variables(raw, (None,)) == set(), "use ${NAME:?...} or ${NAME:-default}, not a bare ${NAME}/$NAME"


def test_no_secret_is_written_in_the_compose_file() -> None:
    raw = compose_raw()
    for block in (raw["x-airflow-common"], *raw["services"].values()):
        for key, value in environment(block).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VAR.match(value), f"{key} must come from ${{VAR:?...}} (.env), not be written here"
    # Credentials inside URIs and option strings are required interpolations too, wherever they appear.
    for text in strings(raw):
        masked = INTERPOLATION.sub(
            lambda m: "<required>" if REQUIRED_VAR.match(m.group()) else "<other>" if m.group() != "$$" else "$", text
        )
        for pattern in (r"://[^/:@\s]*:(?P<secret>[^@\s]+)@", r"password=(?P<secret>[^,\s]+)"):
            for match in re.finditer(pattern, masked):
                assert match.group("secret") == "<required>", f"literal credential in {text!r}"


# --- docker-compose.yaml: the services -----------------------------------------------------------


def test_compose_has_the_conventional_services() -> None:
    services = compose()["services"]
    assert set(services) >= INFRA_SERVICES | AIRFLOW_SERVICES
    # Everything else is only built on request (a profile), never started by `docker compose up`.
    for name in set(services) - INFRA_SERVICES - AIRFLOW_SERVICES:
        assert services[name].get("profiles"), f"{name}: unexpected service in the default profile"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name}: no healthcheck"
        test = check["test"]
        assert (isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1) or (
            isinstance(test, str) and test.strip()
        ), f"{name}: healthcheck test {test!r}"
        assert check.get("interval") and check.get("retries"), f"{name}: healthcheck interval and retries"


def test_every_dependency_waits_on_a_condition() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with a condition"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert not services[target].get("profiles"), f"{name} depends on {target}, which only runs on request"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            one_shot = target in ONE_SHOT_SERVICES
            assert (condition == "service_completed_successfully") == one_shot, f"{name} -> {target}: {condition}"
    for name in ONE_SHOT_SERVICES:
        assert services[name].get("restart") == "no", f"{name} runs once"

    # No cycle: every service can start.
    started: set[str] = set()
    while len(started) < len(services):
        ready = {n for n, s in services.items() if n not in started and set(s.get("depends_on", {})) <= started}
        assert ready, f"dependency cycle among {sorted(set(services) - started)}"
        started |= ready


def test_airflow_services_share_the_official_layout() -> None:
    raw, services = compose_raw(), compose()["services"]
    common_env = {k: str(v) for k, v in raw["x-airflow-common"]["environment"].items()}
    assert common_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in AIRFLOW_SERVICES:
        service = raw["services"][name]
        assert service["image"] == raw["x-airflow-common"]["image"], name
        env = environment(service)
        assert {k: env.get(k) for k in common_env} == common_env, f"{name}: not the x-airflow-common environment"
        assert set(env) - set(common_env) <= {"DUMB_INIT_SETSID"}, f"{name}: settings of its own"
        if name != "airflow-init":
            assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert {"postgres", "redis"} <= set(services[name]["depends_on"]), name
    assert services["airflow-worker"]["command"] == ["celery", "worker"]
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["airflow-init"]["command"] == [
        "bash", "-c", "airflow db migrate && exec python -m maestro_ml.platform.bootstrap pools"
    ]


def test_redis_is_the_broker_and_the_online_store_in_separate_databases() -> None:
    env = environment(compose()["services"]["airflow-worker"])
    broker = re.fullmatch(r"redis://[^@]*@redis:6379/(\d+)", env["AIRFLOW__CELERY__BROKER_URL"])
    online = re.fullmatch(r"redis:6379,(.*)", env["MAESTRO_REDIS_CONNECTION"])
    assert broker and online
    options = dict(opt.split("=", 1) for opt in online.group(1).split(","))
    assert options.get("password") and options.get("db") not in (None, broker.group(1))


def test_postgres_creates_every_database_the_stack_connects_to() -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+);", POSTGRES_INIT.read_text())) | {"postgres"}
    used = {m for text in strings(compose()) for m in re.findall(r"@postgres:5432/(\w+)", text)}
    assert {"airflow", "mlflow", "maestro_feast"} <= used <= created


def test_bucket_init_creates_every_bucket_the_stack_uses() -> None:
    services = compose()["services"]
    script = "\n".join(strings(services["bucket-init"]))
    loop = re.search(r"for bucket in ([^;\n]+);", script)
    assert loop, "bucket-init: `for bucket in ...; do mc mb ...`"
    buckets = set(loop.group(1).split())
    used = {m for text in strings(services) for m in re.findall(r"\bs3://([a-z0-9.-]+)", text)}
    assert used and used <= buckets, f"buckets used but not created: {sorted(used - buckets)}"
    # MLflow keeps its artifacts on the object store (proxied), not on a local volume.
    command = services["mlflow"]["command"]
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
    assert "--serve-artifacts" in command


def test_every_setting_the_code_reads_is_set_for_every_service_running_dag_code() -> None:
    names = code_env_names()
    assert {"MAESTRO_HOME", "MAESTRO_PII_KEY", "MLFLOW_TRACKING_URI", "MAESTRO_FEAST_ENV", "AWS_ENDPOINT_URL"} <= names
    services = compose()["services"]
    for name in DAG_CODE_SERVICES | {"airflow-init"}:
        env = environment(services[name])
        missing = sorted(n for n in names if not env.get(n))
        assert not missing, f"{name} does not set {missing}"
    # The object store's endpoint is the one the stack runs.
    env = environment(services["airflow-worker"])
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL"):
        assert env[name] == "http://object-store:9000", name
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # Remote task logs on the object store, through a connection defined here (credentials from AWS_*).
    log_conn = json.loads(env["AIRFLOW_CONN_" + env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"].upper()])
    assert log_conn["conn_type"] == "aws" and not {"login", "password"} & set(log_conn)
    assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith("s3://")


def test_the_settings_load_from_each_dag_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings_from({}, monkeypatch)
    tunables = ("start_date", "seed_days", "allowed_lateness_hours", "dedupe_lookback_hours", "future_tolerance_minutes",
                "max_range_hours", "batch_nice", "manager_min_assignments", "duration_outcome_maturity_hours",
                "promotion_approval", "feast_project")
    for name in sorted(DAG_CODE_SERVICES):
        settings = load_settings_from(environment(compose()["services"][name]), monkeypatch)
        assert settings.feast_env == "server" and settings.compute == "local", name
        for uri in (settings.landing_uri, settings.lake_uri, settings.quarantine_uri, settings.truth_uri,
                    settings.reports_uri, settings.features_uri):
            assert uri.startswith("s3://"), f"{name}: {uri} is not on the object store"
        assert settings.features_uri == f"{settings.lake_uri}/features"
        assert settings.feast_registry_sql_uri.endswith("@postgres:5432/maestro_feast")
        assert settings.pii_key()
        # The compose file's defaults for the tunables are the settings' own.
        for field in tunables:
            assert getattr(settings, field) == getattr(defaults, field), f"{name}: {field} differs from settings"
    assert isinstance(defaults.start_date, datetime)


# --- include/helm/values.yaml against the official chart ------------------------------------------


def test_helm_values_validate_against_the_chart_schema() -> None:
    version, schema = helm_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(helm_values()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    assert f"--version {version}" in HELM_VALUES.read_text(), "values.yaml names the chart version it is written for"
    # The schema check catches a misplaced value.
    broken = helm_values()
    broken["executor"] = "Kubernetes"
    broken["workers"]["kubernetes"]["serviceAccount"]["create"] = "yes"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_helm_values_run_on_eks_with_an_ecr_image_and_rds() -> None:
    values = helm_values()
    assert values["executor"] == "KubernetesExecutor"
    image = values["images"]["airflow"]
    assert ECR_REPOSITORY.match(image["repository"]), image["repository"]
    tag = str(image.get("tag") or "")
    assert tag and tag != "latest" and image.get("pullPolicy") != "Always", "pin the image tag"
    assert values["images"].get("useDefaultImageForMigration") is False
    # RDS: the connection only through a Secret; no in-chart database, Redis or generated PgBouncer config.
    assert values["data"]["metadataSecretName"] and "metadataConnection" not in values["data"]
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    pgbouncer = values.get("pgbouncer", {})
    assert not pgbouncer.get("enabled") or pgbouncer.get("configSecretName"), "PgBouncer needs its config Secret"


def test_helm_values_log_to_s3_through_a_defined_connection() -> None:
    values = helm_values()
    logging = values["config"]["logging"]
    assert logging["remote_logging"] == "True"
    assert logging["remote_base_log_folder"].startswith("s3://")
    conn_id = logging["remote_log_conn_id"]
    env = {item["name"]: item["value"] for item in values["env"]}
    conn = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
    assert conn["conn_type"] == "aws"
    assert not {"login", "password"} & set(conn), "the log connection carries no credentials (IRSA)"


def test_helm_service_accounts_carry_the_irsa_role() -> None:
    accounts = service_accounts(helm_values())
    for component in ("workers.kubernetes", "triggerer", "apiServer"):
        account = accounts[component]
        assert account["create"] is True and account["name"], component
        assert ROLE_ARN.match(account["annotations"]["eks.amazonaws.com/role-arn"]), component


def test_helm_values_hold_no_secret() -> None:
    values = helm_values()
    for inline in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey", "extraSecrets"):
        assert not values.get(inline), f"{inline} would put a secret in the values file"

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if re.search(r"password|token|(?<!Secret)Key$", str(key), re.I) and not str(key).endswith("Name"):
                    assert value in (None, "", {}, []), f"{path}.{key} holds a value"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, str):
            assert not re.search(r"://[^/:@\s]+:[^@\s]+@", node), f"{path}: a credential in a URI"

    walk(values, "values")
    assert not any(SECRET_NAME.search(item["name"]) for item in values["env"]), "secrets go under `secret:`"


def test_external_secrets_create_every_secret_the_values_name() -> None:
    docs = external_secrets()
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret with its data in the repository"
    stores = {d["metadata"]["name"]: d for d in docs if d["kind"] == "SecretStore"}
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    created: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] != "ExternalSecret":
            continue
        assert doc["apiVersion"] == "external-secrets.io/v1"
        spec = doc["spec"]
        assert spec["secretStoreRef"]["name"] in stores, doc["metadata"]["name"]
        target = spec.get("target", {})
        template_keys = set(target.get("template", {}).get("data", {}))
        keys = template_keys or {item["secretKey"] for item in spec.get("data", [])}
        assert keys, f"{doc['metadata']['name']}: which keys does it create?"
        created[target.get("name", doc["metadata"]["name"])] = keys
    missing = sorted((name, key) for name, key in secret_refs(helm_values()) if key not in created.get(name, set()))
    assert not missing, f"Secrets the values read but nothing creates: {missing}"

    # Secrets Manager, read with the store's own IRSA role.
    for store in stores.values():
        aws = store["spec"]["provider"]["aws"]
        assert aws["service"] == "SecretsManager"
        account = aws["auth"]["jwt"]["serviceAccountRef"]["name"]
        assert ROLE_ARN.match(accounts[account]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
    namespaces = {d["metadata"].get("namespace") for d in docs}
    assert len(namespaces) == 1, f"one release namespace: {namespaces}"
    # The core kinds against the Kubernetes OpenAPI schema (the CRDs' own schemas are not vendored).
    for account in accounts.values():
        kubernetes_validate.validate(account, kubernetes_validate.latest_version(), strict=True)


def test_external_secrets_read_the_entries_terraform_creates() -> None:
    """Each remote key is a Secrets Manager entry of terraform/secrets.tf, synced to the Secret and key it names."""
    text = (REPO / "terraform" / "secrets.tf").read_text()
    entries = {
        name: (secret, key)
        for name, secret, key in re.findall(
            r'^\s{4}([a-z0-9-]+)\s*=\s*\{[^}]*?k8s_secret\s*=\s*"([^"]+)"[^}]*?k8s_key\s*=\s*"([^"]+)"', text, re.M | re.S
        )
    }
    assert entries, "terraform/secrets.tf: no secrets map with k8s_secret / k8s_key"
    for doc in external_secrets():
        if doc["kind"] != "ExternalSecret":
            continue
        target = doc["spec"]["target"]["name"]
        for item in doc["spec"]["data"]:
            prefix, _, entry = item["remoteRef"]["key"].partition("/")
            assert prefix == "CHANGE-ME-prefix" and entry in entries, item["remoteRef"]["key"]
            assert entries[entry] == (target, item["secretKey"]), f"{entry}: terraform syncs it to {entries[entry]}"


# The e2e stack's settings that only place its processes on this one machine (ports, folders, the
# interpreter's path) or speed the test up: the compose stack sets them its own way or not at all.
E2E_LOCAL_SETTINGS = {
    "AIRFLOW__API__PORT", "AIRFLOW__API__BASE_URL", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY", "PYTHONPATH",
}


def _kind(name: str, value: str) -> str:
    """What a setting selects, not where: the store type of a URI or connection, else the value itself."""
    if "://" in value:
        scheme = value.split("://", 1)[0].removeprefix("db+")
        return "postgresql" if scheme.startswith("postgresql") else scheme
    if name == "MAESTRO_REDIS_CONNECTION":
        return "redis"
    return value if name in {"AIRFLOW__CORE__EXECUTOR", "MAESTRO_FEAST_ENV"} else "set"


def test_the_compose_stack_is_the_one_the_distributed_e2e_test_proves() -> None:
    """Same services (the e2e test's two workers are the compose worker scaled to two) and the same store
    wiring: every setting the e2e stack gives DAG code is set for the compose worker, selecting the same
    kind of store (S3, PostgreSQL, Redis, the MLflow server, Celery, Feast's server environment)."""
    from tests.e2e.distributed_stack import WORKERS, DistributedStack

    e2e = DistributedStack(Path("/nonexistent"))
    e2e.ports = {"object-store": 9000, "mlflow": 5000, "airflow-apiserver": 8080}
    e2e.redis_dbs, e2e.databases = {"broker": 0, "online": 1}, {k: k for k in ("airflow", "mlflow", "feast")}
    e2e.start_date = "2026-11-01T00:00:00Z"
    services = set(compose()["services"])
    e2e_services = {"object-store", "mlflow", "airflow-init", "airflow-apiserver", "airflow-scheduler",
                    "airflow-dag-processor", "airflow-triggerer"} | {"airflow-worker" for _ in WORKERS}
    assert e2e_services <= services, f"compose lacks {sorted(e2e_services - services)}"
    wiring = {k: v for k, v in {**e2e.maestro_env(), **e2e.airflow_env()}.items() if k not in E2E_LOCAL_SETTINGS}
    worker = environment(compose()["services"]["airflow-worker"])
    missing = sorted(set(wiring) - set(worker))
    assert missing == [], f"the e2e stack sets {missing} for its workers; the compose worker does not"
    differing = {k: (_kind(k, wiring[k]), _kind(k, worker[k])) for k in wiring
                 if _kind(k, wiring[k]) != _kind(k, worker[k])}
    assert differing == {}, f"(e2e, compose) select different stores: {differing}"
