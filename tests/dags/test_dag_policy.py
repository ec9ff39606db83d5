"""DAG quality gates: every DAG in dags/, now and later, must pass these."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from maestro_ml.settings import APPROVED_DAG_TAGS, DAG_OWNER

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "pyarrow", "numpy", "torch", "lightgbm", "feast", "mlflow", "great_expectations", "sklearn")
MAX_PARSE_SECONDS = 0.2


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # Parse once so the module imports Airflow itself pulls in are not charged to the first DAG file.
    DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)
    return DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)


def _dag_call(tree: ast.Module) -> ast.Call:
    """The ``@dag(...)`` decorator call of the file's DAG function."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "dag":
                    return deco
    raise AssertionError("no @dag(...) decorated function found")


def test_there_are_dags() -> None:
    assert DAG_FILES, "dags/ holds no DAG files"


def test_dagbag_loads_without_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) == len(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_one_dag_per_file_named_after_the_file(dagbag, path: Path) -> None:
    dag_ids = [d.dag_id for d in dagbag.dags.values() if Path(d.fileloc).resolve() == path.resolve()]
    assert dag_ids == [path.stem]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_metadata(dagbag, path: Path) -> None:
    dag = dagbag.dags[path.stem]
    module_doc = ast.get_docstring(ast.parse(path.read_text()))
    assert module_doc, "the module docstring is the DAG's doc_md"
    assert dag.doc_md and dag.doc_md.strip() == module_doc.strip()
    assert dag.tags, "a DAG needs tags"
    assert set(dag.tags) <= APPROVED_DAG_TAGS, f"unapproved tags: {set(dag.tags) - APPROVED_DAG_TAGS}"
    for t in dag.tasks:
        assert t.owner == DAG_OWNER, f"{t.task_id} owner is {t.owner!r}"
        assert t.retries >= 2, f"{t.task_id} has retries={t.retries}"
        assert isinstance(t.retry_delay, timedelta) and t.retry_delay > timedelta(0), t.task_id


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_catchup_and_max_active_runs_are_explicit(path: Path) -> None:
    call = _dag_call(ast.parse(path.read_text()))
    keywords = {k.arg for k in call.keywords}
    assert "catchup" in keywords, "catchup must be set explicitly"
    assert "max_active_runs" in keywords, "max_active_runs must be set: every Maestro DAG writes shared state"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_airflow3_idioms(path: Path) -> None:
    tree = ast.parse(path.read_text())
    airflow_imports = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow")
    ]
    assert "airflow.sdk" in airflow_imports
    legacy = {"airflow.models", "airflow.decorators", "airflow.operators.python", "airflow.datasets", "airflow.models.dag"}
    assert not legacy & set(airflow_imports), f"Airflow 2 imports: {legacy & set(airflow_imports)}"
    call = _dag_call(tree)
    assert any(k.arg == "schedule" for k in call.keywords), "schedule must be explicit"


@pytest.fixture(scope="module")
def heavy_imports_by_file() -> dict[str, list[str]]:
    """Import every DAG file in turn in one clean interpreter; the heavy modules each file newly loaded."""
    probe = (
        "import importlib.util, json, sys\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "out = {}\n"
        f"for path in {[str(p) for p in DAG_FILES]!r}:\n"
        "    before = {m for m in heavy if m in sys.modules}\n"
        "    spec = importlib.util.spec_from_file_location('probe_' + path.rsplit('/', 1)[-1][:-3], path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "    out[path] = sorted(m for m in heavy if m in sys.modules and m not in before)\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")},
        timeout=120,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_imports_at_parse_time(heavy_imports_by_file: dict[str, list[str]], path: Path) -> None:
    """Import guard: the DAG file, imported in a clean interpreter, loads none of the heavy modules."""
    loaded = heavy_imports_by_file[str(path)]
    assert loaded == [], f"{path.name} imports heavy modules at parse time: {loaded}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_the_docs_list_every_task(dagbag, path: Path) -> None:
    """doc_md is the DAG's table of contents: each task id appears in it as **task_id**."""
    dag = dagbag.dags[path.stem]
    missing = [t.task_id for t in dag.tasks if f"**{t.task_id}**" not in (dag.doc_md or "")]
    assert missing == [], f"{path.stem}'s docstring does not list {missing}"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_params_have_titles_and_days_have_a_date_format(dagbag, path: Path) -> None:
    """The trigger form shows a title for every Param and a date picker for every day; hours and instants
    have a pattern and no ``date-time`` format, which would refuse the documented short forms wherever
    jsonschema can check it (see ``maestro_ml.orchestration.params``)."""
    dag = dagbag.dags[path.stem]
    for name in dag.params:
        schema = dag.params.get_param(name).schema
        param = dag.params.get_param(name)
        assert schema.get("title") and param.description, f"{path.stem}.{name} needs a title and a description"
        is_date = name in {"start", "end", "partition"} or r"\d{4}-\d{2}-\d{2}" in schema.get("pattern", "")
        if is_date:
            assert schema.get("pattern"), f"{path.stem}.{name} is a date without a pattern"
            assert schema.get("format") in {"date", None}, f"{path.stem}.{name}: format {schema.get('format')!r}"


@pytest.mark.parametrize(("dag_id", "conf"), [
    ("ingest_events", {"partition": "2026-11-12T09"}),
    ("ingest_events", {"start": "2026-11-12T00", "end": "2026-11-13T00"}),
    ("build_features", {"start": "2026-11-10", "end": "2026-11-12"}),
    ("materialize_features", {"start": "2026-11-10", "end": "2026-11-12T06:00:00Z"}),
    ("train_task_assignment", {"end": "2026-11-15", "hyperparameters": {"lgb-num-boost-round": 100}}),
    ("train_task_duration", {"end": "2026-11-15T06:00:00Z", "train_days": 10}),
    ("simulate_activity", {"preset": "tiny", "start": "2026-11-01T00:00:00Z"}),
])
def test_the_documented_trigger_confs_pass_param_validation(dagbag, dag_id: str, conf: dict) -> None:
    params = copy.deepcopy(dagbag.dags[dag_id].params)
    params.update(conf)  # what a trigger with this conf does: each value resolved against its Param's schema
    resolved = params.validate()
    assert {k: resolved[k] for k in conf} == conf


@pytest.mark.parametrize("seed_days", [2, 14])
def test_the_rest_examples_make_up_prints_pass_param_validation(dagbag, seed_days: int) -> None:
    from datetime import UTC, datetime

    from maestro_ml.platform.examples import examples

    for item in examples(datetime(2026, 11, 18, 10, tzinfo=UTC), seed_days):
        params = copy.deepcopy(dagbag.dags[item.dag_id].params)
        params.update(item.conf)
        assert {k: params.validate()[k] for k in item.conf} == item.conf, item.title


def test_ingest_runs_one_at_a_time_so_a_backfill_and_the_hourly_schedule_never_interleave(dagbag) -> None:
    # The state fold and the dedupe lookback read the hours before: a second run waits in the queue.
    assert dagbag.dags["ingest_events"].max_active_runs == 1


BATCH_DAGS = ("build_features", "materialize_features", "train_task_assignment", "train_task_duration")


def test_batch_work_runs_at_a_lower_cpu_priority_and_queues_after_ingestion(dagbag) -> None:
    # On make up's 2 cores an hourly ingest run shares the CPU with feature builds and trainings.
    from maestro_ml.orchestration.defaults import lower_cpu_priority

    ingest = dagbag.dags["ingest_events"].tasks
    for dag_id in BATCH_DAGS:
        for task in dagbag.dags[dag_id].tasks:
            callbacks = task.on_execute_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert lower_cpu_priority in callbacks, f"{dag_id}.{task.task_id}"
            # Batch weights add up downstream; ingestion's are absolute and above any such sum.
            total = task.priority_weight * (1 + len(task.get_flat_relatives(upstream=False)))
            assert all(total < t.priority_weight for t in ingest), f"{dag_id}.{task.task_id}"
    assert not any(t.on_execute_callback for t in ingest)


@pytest.mark.parametrize(("dag_id", "conf"), [
    ("build_features", {"start": "2026-11-10T09", "end": "2026-11-12"}),
    ("train_task_assignment", {"end": "next tuesday"}),
    ("ingest_events", {"partition": "2026-11-12"}),
    ("ingest_events", {"partition": "2026-13-45T99"}),
    ("ingest_events", {"partition": "2026-11-12T24"}),
    ("build_features", {"start": "2026-02-30", "end": "2026-03-02"}),
    ("materialize_features", {"start": "2026-11-10T25:00", "end": "2026-11-12"}),
    ("train_task_duration", {"end": "2026-11-31"}),
])
def test_malformed_dates_are_refused_at_trigger_time(dagbag, dag_id: str, conf: dict) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags[dag_id].params)
    with pytest.raises(ParamValidationError):
        params.update(conf)
        params.validate()


def test_parse_time_per_file(dagbag) -> None:
    """Airflow's own DagBag statistics: every file parses in under MAX_PARSE_SECONDS."""
    slow = {
        Path(stat.file).name: stat.duration.total_seconds()
        for stat in dagbag.dagbag_stats
        if stat.duration.total_seconds() >= MAX_PARSE_SECONDS
    }
    assert len(dagbag.dagbag_stats) == len(DAG_FILES)
    assert slow == {}, f"DAG files slower than {MAX_PARSE_SECONDS}s to parse: {slow}"


def test_ruff_enables_the_airflow_rules() -> None:
    """`make lint` runs ruff; here: the AIR rules are really on, so lint does not pass because they are off.

    AIR003 is the gate against Variable.get outside tasks (that is, at parse time).
    """
    ruff = Path(sys.executable).with_name("ruff")
    shown = subprocess.run(
        [str(ruff), "check", "--show-settings", str(DAG_FILES[0])], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    for rule in ("airflow3-removal (AIR301)", "airflow-variable-get-outside-task (AIR003)"):
        assert rule in shown.stdout, f"ruff rule {rule} is not enabled"
