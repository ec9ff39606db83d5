"""``python -m maestro_ml.training <model> --train-uri ... --valid-uri ...``: one MLflow run per training.

The same command is the container command of the training image (KubernetesPodOperator) and the
local process of the default compute. It reads the sets (local path or ``s3://``), trains,
evaluates on validation (and test when given), logs everything to MLflow and prints one JSON
line: ``{"run_id", "experiment_id", "model", "metrics", ...}``. Airflow finds the run by its tags,
so nothing travels through XCom sidecars. This package never imports Airflow.

Each model is one subcommand, declared by its ``ModelSpec`` (``maestro_ml.contracts.models``); its
trainer module adds the model's own flags (``add_arguments``) and trains (``run``).
``python -m maestro_ml.training <model> --help`` lists every flag with its default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from maestro_ml.contracts.models import EXIT_TOO_LITTLE_DATA, EXPERIMENT_TAGS, MODELS, TooLittleDataError, model_spec
from maestro_ml.training import data
from maestro_ml.training.loop import seed_everything
from maestro_ml.training.tracking import git_sha, lineage_dataset

log = logging.getLogger("maestro_ml.training")

# Flags the training DAG sets itself for every run: not hyperparameters a person overrides.
RUN_FLAGS = frozenset({"train-uri", "valid-uri", "test-uri", "truth-uri", "experiment", "run-tags", "run-name",
                       "tracking-uri"})


class HyperparameterError(ValueError):
    """A hyperparameter override the model's training CLI does not accept (unknown flag or bad value)."""


class _CheckingParser(argparse.ArgumentParser):
    """A parser that raises instead of printing usage and exiting: for checking overrides before a run."""

    def error(self, message: str) -> NoReturn:
        raise HyperparameterError(message)


def trainer(model: str) -> ModuleType:
    """The trainer module of ``model``: ``add_arguments(parser)``, ``count_groups(frame)`` and ``run(args, train, valid, test, workdir, digest)``."""
    return importlib.import_module(model_spec(model).trainer)


def build_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser, only: str | None = None
) -> argparse.ArgumentParser:
    """The CLI's parser: one subcommand per model spec.

    With ``only``, just that model's trainer is imported for its flags (the other subcommands keep
    their common flags): a duration run never pays for LightGBM's import.
    """
    parser = parser_class(prog="python -m maestro_ml.training", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    subcommands = parser.add_subparsers(dest="model", required=True, metavar="model", parser_class=parser_class,
                                        help=" | ".join(MODELS))
    for spec in MODELS.values():
        sub = subcommands.add_parser(spec.subcommand, help=spec.description, description=spec.description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add_run_arguments(sub)
        if only is None or only == spec.subcommand:
            trainer(spec.name).add_arguments(sub)
    return parser


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every model has: where the sets are, where the run goes, and how it runs."""
    group = parser.add_argument_group("data and tracking")
    group.add_argument("--train-uri", required=True, help="training set (Parquet file or directory, path or s3://)")
    group.add_argument("--valid-uri", required=True,
                       help="validation set: early stopping, ensemble weight, calibration")
    group.add_argument("--test-uri", default=None, help="held-out later days, evaluated once at the end")
    group.add_argument("--truth-uri", default=None, help="simulator truth directory (scores against the optimum)")
    group.add_argument("--experiment", default=None, help="MLflow experiment (default: maestro-<model>)")
    group.add_argument("--run-tags", default="", help="k=v,k=v or a JSON object: dag_id, run_id, data interval")
    group.add_argument("--run-name", default=None,
                       help="MLflow run name (default: <model>-<window_end tag, or now>, e.g. task_duration-2026-11-15T00)")
    group.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                       help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    group.add_argument("--max-rows", type=int, default=None, help="cap on training rows: whole groups drawn at random with --seed")
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--seed", type=int, default=7, help="random seed of every library (same seed, same model)")
    runtime.add_argument("--device", default="auto", help="where PyTorch trains: auto (CUDA when present), cpu or cuda")
    runtime.add_argument("--checkpoint-dir", default=None, help="where a retried pod resumes from")
    runtime.add_argument("--threads", type=int, default=0, help="LightGBM and torch CPU threads (0: all cores)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else argv
    subcommands = {spec.subcommand for spec in MODELS.values()}
    return build_parser(only=argv[0] if argv and argv[0] in subcommands else None).parse_args(argv)


def override_arguments(model: str, overrides: Mapping[str, Any]) -> list[str]:
    """``overrides`` (flag name without dashes -> value) as CLI flags of ``model``, checked by the CLI's own parser.

    Raises ``HyperparameterError`` naming the model's valid flags for an unknown flag, and the
    parser's own message for a value it rejects, so a typo fails before any set is built.
    """
    parser = build_parser(_CheckingParser, only=model_spec(model).subcommand)
    sub = _subparser(parser, model)
    valid = sorted(flag[2:] for action in sub._actions for flag in action.option_strings
                   if flag.startswith("--") and flag[2:] not in RUN_FLAGS | {"help"})
    unknown = sorted(str(name) for name in overrides if str(name).lstrip("-") not in valid)
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for {model}; valid flags: {', '.join(valid)}"
        )
    args = []
    for name, value in sorted(overrides.items()):
        args += [f"--{str(name).lstrip('-')}", str(value)]
    parser.parse_args([model, "--train-uri", "-", "--valid-uri", "-", *args])
    return args


def _subparser(parser: argparse.ArgumentParser, model: str) -> argparse.ArgumentParser:
    model_spec(model)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[model]  # type: ignore[no-any-return]
    raise RuntimeError("the training CLI has no subcommands")


def parse_tags(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [p for p in pairs if len(p) != 2]
    if bad:
        raise SystemExit(f"--run-tags: expected k=v pairs, got {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


def run_name(model: str, tags: Mapping[str, str], now: float | None = None) -> str:
    """What the run is: the model and the end of its data window (the DAG's ``window_end`` tag), else the start time."""
    end = tags.get("window_end")
    when = end[:13] if end else time.strftime("%Y-%m-%dT%H%M", time.gmtime(now))
    return f"{model}-{when}"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spec = model_spec(args.model)
    started = time.perf_counter()
    train = data.read_frame(args.train_uri, args.max_rows, args.seed)
    valid = data.read_frame(args.valid_uri)
    test = data.read_frame(args.test_uri) if args.test_uri else None
    module = trainer(args.model)
    counts = {name: module.count_groups(frame) for name, frame in (("train", train), ("valid", valid), ("test", test))
              if frame is not None}
    try:
        spec.floor.check(args.model, counts)
    except TooLittleDataError as exc:
        # Before MLflow is touched: a retry cannot fix it, and no failed run is left behind.
        log.error("%s", exc)
        return EXIT_TOO_LITTLE_DATA
    import mlflow
    import torch

    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    experiment = mlflow.set_experiment(args.experiment or spec.experiment_name)
    for key, value in EXPERIMENT_TAGS.items():
        if experiment.tags.get(key) != value:
            mlflow.set_experiment_tag(key, value)
    tags = {"model": args.model, "git_sha": git_sha(), **parse_tags(args.run_tags)}
    with mlflow.start_run(run_name=args.run_name or run_name(args.model, tags), tags=tags) as run, tempfile.TemporaryDirectory(prefix="maestro-train-") as workdir:
        digests = {}
        for name, frame, uri in (("train", train, args.train_uri), ("valid", valid, args.valid_uri),
                                 ("test", test, args.test_uri)):
            if frame is not None:
                digests[name] = data.digest(frame)
                mlflow.log_input(lineage_dataset(frame, uri, f"{args.model}-{name}", digests[name]), context=name)
        params = {k: v for k, v in vars(args).items() if k not in ("run_tags", "tracking_uri")}
        mlflow.log_params({**params, "train_rows": len(train), "valid_rows": len(valid),
                           "train_digest": digests["train"]})
        result = module.run(args, train, valid, test, Path(workdir), digests["train"])
        mlflow.log_metric("training_seconds", time.perf_counter() - started)
        payload = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "model": args.model,
            "artifact_uri": run.info.artifact_uri,
            "seconds": round(time.perf_counter() - started, 2),
            **result,
        }
    print(json.dumps(payload, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
