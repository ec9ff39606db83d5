"""Training, evaluation and MLflow logging of the task-assignment ranker (called inside the CLI's MLflow run)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maestro_ml.evaluation.ranking import (
    TRUTH_KEYS,
    baseline_reports,
    baseline_score_columns,
    ndcg_per_group,
    observed_relevance,
    paired_bootstrap,
    ranking_report,
    truth_relevance,
)
from maestro_ml.training import data
from maestro_ml.training.loop import LoopConfig, fit, outputs
from maestro_ml.training.loop import add_arguments as add_torch_arguments
from maestro_ml.training.ranker import (
    ENSEMBLE_WEIGHTS,
    LightGBMConfig,
    ListwiseScorer,
    blend,
    listwise_loss,
    padded_groups,
    train_lightgbm,
)
from maestro_ml.training.serving import EnsemblePyfunc, EnsembleRanker, TorchScorerPyfunc
from maestro_ml.training.tracking import (
    feature_signature,
    log_bundle_pyfunc,
    log_curves,
    model_requirements,
    report_metrics,
)

MODEL_CARD = """# Task-assignment ranker

**Intended use.** Rank the eligible members of a task's team for a new task, to suggest an assignee
to the team's manager. Not for performance reviews or any decision about people beyond this suggestion.

**Data window.** Train: {train_window}. Validation: {valid_window}. Test: {test_window}.
Rows: {train_rows:,} train / {valid_rows:,} validation, {train_groups:,} / {valid_groups:,} decisions.

**Label.** Graded relevance from observed outcomes: 2 chosen and delivered on time, 1 chosen otherwise,
0 not chosen (`maestro_ml.evaluation.ranking.observed_relevance`).

**Models.** {models}. LightGBM has {lgb_trees} trees; with both, their scores are blended after
z-scoring within each decision, LightGBM weight {weight} chosen on validation NDCG@5.

**Metrics (validation).**

{metrics_table}

**Limitations.** Observed labels only reveal the manager's pick, not what the other candidates would
have done, so the ranker learns the managers' preferences, noise included. Features are as of 1 ms
before the decision; a candidate without recent activity gets imputed values.
"""


MODEL_NAMES = {"lightgbm": "LightGBM LambdaMART", "torch": "a PyTorch listwise MLP"}


def _window(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return "none"
    times = pd.to_datetime(frame[data.TIME_COLUMN], utc=True)
    return f"{times.min():%Y-%m-%d %H:%M} .. {times.max():%Y-%m-%d %H:%M} UTC"


def _evaluate(frame: pd.DataFrame, scores: dict[str, np.ndarray], truth: pd.DataFrame | None,
              history: pd.DataFrame | None = None) -> dict[str, Any]:
    scored = frame.assign(relevance=observed_relevance(frame).to_numpy())
    if truth is not None:
        scored["truth_relevance"] = truth_relevance(scored, truth).to_numpy()
    # Integer group codes once, so each of the dozen reports below does not factorize string ids again.
    scored[data.GROUP_COLUMN] = pd.factorize(scored[data.GROUP_COLUMN])[0]
    report: dict[str, Any] = {}
    for name, values in scores.items():
        scored[f"score_{name}"] = values
        # A decision whose actual assignee is not a candidate is a miss of the candidate rule: it counts 0.
        report[name] = ranking_report(scored, f"score_{name}", "relevance", misses="zero")
        if truth is not None:
            report[f"{name}_truth"] = ranking_report(scored, f"score_{name}", "truth_relevance")
    baselines = baseline_score_columns(scored, history=history)
    for name, baseline in baseline_reports(scored, "relevance", data.GROUP_COLUMN, misses="zero",
                                           scores=baselines).items():
        report[f"baseline_{name}"] = baseline
    if truth is not None:
        for name, baseline in baseline_reports(scored, "truth_relevance", data.GROUP_COLUMN, scores=baselines).items():
            report[f"baseline_{name}_truth"] = baseline
    report["ensemble_vs_best_baseline"] = _against_best_baseline(scored, report, baselines)
    return report


def _against_best_baseline(scored: pd.DataFrame, report: dict[str, Any],
                           baselines: dict[str, np.ndarray]) -> dict[str, Any]:
    """NDCG@5 of the ensemble minus the strongest baseline's, per decision, with a paired bootstrap 95% interval."""
    if "ensemble" not in report or not baselines:
        return {}
    best = max(baselines, key=lambda n: report[f"baseline_{n}"]["ndcg@5"])
    model = ndcg_per_group(scored, "score_ensemble", "relevance", data.GROUP_COLUMN, 5)
    other = ndcg_per_group(scored.assign(_baseline=baselines[best]), "_baseline", "relevance", data.GROUP_COLUMN, 5)
    result = paired_bootstrap(model, other)
    return {"baseline": best, "ndcg@5_diff": result["diff"], "ndcg@5_diff_lo95": result["lo"],
            "ndcg@5_diff_hi95": result["hi"], "decisions": result["n"]}


def _log_models(ensemble: EnsembleRanker, sample: pd.DataFrame, workdir: Path) -> None:
    import mlflow.lightgbm

    x_sample = sample[ensemble.features]
    mlflow.lightgbm.log_model(
        ensemble.booster,
        name="lightgbm_ranker",
        signature=feature_signature(x_sample, ensemble.booster.predict(x_sample.to_numpy(dtype=np.float64))),
        input_example=x_sample.head(5),
        pip_requirements=model_requirements(),
    )
    bundle = ensemble.save(workdir / "ensemble")
    if ensemble.scorer is not None:
        log_bundle_pyfunc("torch_scorer", TorchScorerPyfunc(), bundle, x_sample, ensemble.torch_scores(sample))
    columns = [data.GROUP_COLUMN, *ensemble.features]
    log_bundle_pyfunc("model", EnsemblePyfunc(), bundle, sample[columns], ensemble.predict(sample))


def _log_artifacts(booster: Any, features: list[str], x_valid: np.ndarray, curves: dict[str, list[float]],
                   card: str, workdir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    # Gain importance and mean |SHAP| from LightGBM's own TreeSHAP (pred_contrib): no extra dependency.
    contrib = booster.predict(x_valid[: min(len(x_valid), 5000)], pred_contrib=True)
    importance = pd.DataFrame(
        {
            "feature": features,
            "gain": booster.feature_importance(importance_type="gain"),
            "mean_abs_shap": np.abs(contrib[:, :-1]).mean(axis=0),
        }
    ).sort_values("mean_abs_shap", ascending=False)
    importance.to_csv(workdir / "feature_importance.csv", index=False)
    fig, ax = plt.subplots(figsize=(7, max(3, 0.25 * len(features))))
    ax.barh(importance["feature"][::-1], importance["mean_abs_shap"][::-1])
    ax.set_xlabel("mean |SHAP| (validation)")
    fig.tight_layout()
    fig.savefig(workdir / "feature_importance.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in sorted(curves.items()):
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_xlabel("boosting round")
    ax.set_ylabel("validation NDCG")
    ax.legend()
    fig.tight_layout()
    fig.savefig(workdir / "ndcg_curve.png", dpi=100)
    plt.close(fig)
    (workdir / "model_card.md").write_text(card)
    for name in ("feature_importance.csv", "feature_importance.png", "ndcg_curve.png", "model_card.md"):
        mlflow.log_artifact(str(workdir / name))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ranker's flags: which models, LightGBM's settings and the PyTorch scorer's."""
    parser.add_argument("--ranker-models", default="lightgbm,torch", choices=["lightgbm,torch", "lightgbm"],
                        help="the LightGBM + PyTorch ensemble, or LightGBM alone")
    group = parser.add_argument_group("LightGBM LambdaMART")
    defaults = LightGBMConfig()
    group.add_argument("--lgb-num-leaves", type=int, default=defaults.num_leaves, help="leaves per tree")
    group.add_argument("--lgb-learning-rate", type=float, default=defaults.learning_rate, help="shrinkage per round")
    group.add_argument("--lgb-num-boost-round", type=int, default=defaults.num_boost_round,
                       help="most boosting rounds (early stopping may end sooner)")
    group.add_argument("--lgb-early-stopping-rounds", type=int, default=defaults.early_stopping_rounds,
                       help="rounds without a better validation NDCG before stopping")
    group.add_argument("--lgb-min-data-in-leaf", type=int, default=defaults.min_data_in_leaf,
                       help="fewest rows in a leaf")
    group.add_argument("--lgb-max-bin", type=int, default=defaults.max_bin, help="histogram bins per feature")
    add_torch_arguments(parser)


def lightgbm_config(args: argparse.Namespace) -> LightGBMConfig:
    """The LightGBM settings of the CLI's ``--lgb-*``, ``--threads`` and ``--seed`` flags."""
    return LightGBMConfig(
        num_leaves=args.lgb_num_leaves, learning_rate=args.lgb_learning_rate, num_boost_round=args.lgb_num_boost_round,
        early_stopping_rounds=args.lgb_early_stopping_rounds, min_data_in_leaf=args.lgb_min_data_in_leaf,
        max_bin=args.lgb_max_bin, num_threads=args.threads, seed=args.seed,
    )


def _train_scorer(args: argparse.Namespace, train: pd.DataFrame, valid: pd.DataFrame, features: list[str],
                  y_train: np.ndarray, y_valid: np.ndarray, train_digest: str) -> tuple[Any, data.Standardizer, Any]:
    """The PyTorch listwise scorer with early stopping on validation NDCG@5; (scorer, standardizer, loop result)."""
    import torch

    g_train = data.group_sizes(train)
    standardizer = data.Standardizer.fit(train, features)
    xs, ys, mask = padded_groups(standardizer.transform(train), y_train.astype(np.float32), g_train)
    xv_std = standardizer.transform(valid)
    scorer = ListwiseScorer(len(features), hidden=args.hidden, dropout=args.dropout)
    valid_frame = valid.assign(relevance=y_valid)

    def batches(rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        order = rng.permutation(len(xs))
        size = max(1, args.batch_size)
        return [(torch.from_numpy(xs[i]), torch.from_numpy(ys[i]), torch.from_numpy(mask[i]))
                for i in (order[s : s + size] for s in range(0, len(order), size))]

    def loss_fn(model: Any, batch: tuple[Any, ...]) -> Any:
        x, y, m = batch
        return listwise_loss(model(x), y, m)

    def validate(model: Any) -> float:
        scores = outputs(model, xv_std)
        return ranking_report(valid_frame.assign(score=scores), "score", "relevance")["ndcg@5"]

    loop = fit(scorer, batches, loss_fn, validate,
               LoopConfig(epochs=args.epochs, patience=args.patience, learning_rate=args.learning_rate,
                          device=args.device, checkpoint_dir=args.checkpoint_dir, seed=args.seed),
               data_digest=train_digest)
    log_curves({"torch_valid_ndcg_at_5": [row["valid_score"] for row in loop.history],
                "torch_train_loss": [row["train_loss"] for row in loop.history]},
               steps=[int(row["epoch"]) for row in loop.history])
    return scorer, standardizer, loop


def _best_weight(lgb_valid: np.ndarray, torch_valid: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray) -> float:
    """The LightGBM weight of the blend with the best validation NDCG@5 (ties keep the first, LightGBM-heavier)."""
    g_valid = data.group_sizes(valid)
    valid_frame = valid.assign(relevance=y_valid)
    best_weight, best_ndcg = 1.0, -1.0
    for weight in ENSEMBLE_WEIGHTS:
        ndcg = ranking_report(valid_frame.assign(score=blend(lgb_valid, torch_valid, g_valid, weight)), "score",
                              "relevance")["ndcg@5"]
        if ndcg > best_ndcg + 1e-9:
            best_weight, best_ndcg = weight, ndcg
    return best_weight


def count_groups(frame: pd.DataFrame) -> int:
    """The groups the data floor counts: assignment decisions."""
    return int(frame[data.GROUP_COLUMN].nunique())


def run(
    args: argparse.Namespace, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame | None, workdir: Path,
    train_digest: str,
) -> dict[str, Any]:
    import mlflow

    models = args.ranker_models.split(",")
    features = data.feature_columns(train)
    if not features:
        raise ValueError("the training set has no numeric feature columns")
    y_train = observed_relevance(train).to_numpy(dtype=np.float64)
    y_valid = observed_relevance(valid).to_numpy(dtype=np.float64)
    g_train, g_valid = data.group_sizes(train), data.group_sizes(valid)
    x_train = train[features].to_numpy(dtype=np.float64)
    x_valid = valid[features].to_numpy(dtype=np.float64)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    booster, curves = train_lightgbm(x_train, y_train, g_train, x_valid, y_valid, g_valid, features,
                                     lightgbm_config(args))
    timings["lightgbm_train_seconds"] = time.perf_counter() - started
    log_curves({f"lgb_valid_{name.replace('@', '_at_')}": values for name, values in curves.items()})
    lgb_valid = np.asarray(booster.predict(x_valid), dtype=np.float64)

    scorer, loop, best_weight, standardizer = None, None, 1.0, None
    if "torch" in models:
        started = time.perf_counter()
        scorer, standardizer, loop = _train_scorer(args, train, valid, features, y_train, y_valid, train_digest)
        timings["torch_train_seconds"] = time.perf_counter() - started
        best_weight = _best_weight(lgb_valid, outputs(scorer, standardizer.transform(valid)).astype(np.float64), valid,
                                   y_valid)
    ensemble = EnsembleRanker(booster, scorer, standardizer, features, best_weight)

    started = time.perf_counter()
    truth = None
    if args.truth_uri:
        truth = data.read_truth(args.truth_uri, [*TRUTH_KEYS, "utility"], [valid, test])
    metrics: dict[str, float] = {"ensemble_weight_lightgbm": best_weight, "lgb_best_iteration": booster.best_iteration}
    if loop is not None:
        metrics["torch_best_epoch"] = loop.best_epoch
    evaluations = {"valid": valid} | ({"test": test} if test is not None else {})
    # Who was chosen on each project before a decision: the online project baselines count it.
    columns = ["project_id", "user_id", data.TIME_COLUMN, "chosen"]
    parts = [f[columns] for f in (train, valid, test) if f is not None and all(c in f for c in columns)]
    history = pd.concat(parts, ignore_index=True) if parts else None
    reports = {}
    for split, frame in evaluations.items():
        x = frame[features].to_numpy(dtype=np.float64)
        scores = {"lightgbm": np.asarray(booster.predict(x), dtype=np.float64)}
        scores["ensemble"] = scores["lightgbm"]
        if scorer is not None and standardizer is not None:
            scores["torch"] = outputs(scorer, standardizer.transform(frame)).astype(np.float64)
            scores["ensemble"] = blend(scores["lightgbm"], scores["torch"], data.group_sizes(frame), best_weight)
        report = _evaluate(frame, scores, truth, history)
        reports[split] = report
        for name, values in report.items():
            metrics.update(report_metrics(f"{split}_{name}", values))
    timings["evaluation_seconds"] = time.perf_counter() - started
    (workdir / "evaluation.json").write_text(json.dumps(reports, indent=2, default=float))
    mlflow.log_artifact(str(workdir / "evaluation.json"))

    started = time.perf_counter()
    versus = reports["valid"].get("ensemble_vs_best_baseline") or {}
    table = "\n".join(
        ["| model | NDCG@1 | NDCG@5 | NDCG@10 | hits@5 | MRR | coverage |", "|---|---|---|---|---|---|---|"]
        + [f"| {name} | {r['ndcg@1']:.3f} | {r['ndcg@5']:.3f} | {r['ndcg@10']:.3f} | {r.get('hits@5', float('nan')):.3f} "
           f"| {r['mrr']:.3f} | {r.get('coverage', float('nan')):.3f} |"
           for name, r in reports["valid"].items() if "ndcg@5" in r]
        + ([f"\nEnsemble minus the strongest baseline ({versus['baseline']}), NDCG@5 per decision: "
            f"{versus['ndcg@5_diff']:+.3f}, paired bootstrap 95% interval [{versus['ndcg@5_diff_lo95']:+.3f}, "
            f"{versus['ndcg@5_diff_hi95']:+.3f}] over {versus['decisions']} decisions."] if versus else [])
    )
    card = MODEL_CARD.format(
        train_window=_window(train), valid_window=_window(valid), test_window=_window(test),
        train_rows=len(train), valid_rows=len(valid), train_groups=len(g_train), valid_groups=len(g_valid),
        lgb_trees=booster.num_trees(), weight=best_weight, metrics_table=table,
        models=" and ".join(MODEL_NAMES[m] for m in models),
    )
    _log_artifacts(booster, features, x_valid, curves, card, workdir)
    _log_models(ensemble, valid.head(200), workdir)
    timings["model_logging_seconds"] = time.perf_counter() - started
    mlflow.log_metrics({**metrics, **timings})
    valid_ensemble = reports["valid"]["ensemble"]
    return {"metrics": {"valid_ndcg_at_5": valid_ensemble["ndcg@5"], "valid_mrr": valid_ensemble["mrr"],
                        "ensemble_weight_lightgbm": best_weight, **timings},
            "device": loop.device if loop is not None else "cpu",
            "resumed_from_epoch": loop.resumed_from_epoch if loop is not None else None}
