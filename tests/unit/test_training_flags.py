"""The training CLI: one subcommand per model spec, every flag documented, overrides checked by its own parser."""

from __future__ import annotations

import argparse

import pytest

from maestro_ml.contracts.models import MODELS
from maestro_ml.training.cli import HyperparameterError, build_parser, override_arguments, parse_args


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_there_is_one_subcommand_per_model_spec() -> None:
    assert set(_subparsers()) == {spec.subcommand for spec in MODELS.values()}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_flag_has_help_text_and_a_default(model: str) -> None:
    for action in _subparsers()[model]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{model} {action.option_strings} has no help"
        assert action.required or action.default is not argparse.SUPPRESS, f"{model} {action.option_strings}"


def test_a_duration_run_has_no_lightgbm_flags() -> None:
    flags = {flag for action in _subparsers()["task_duration"]._actions for flag in action.option_strings}
    assert not {f for f in flags if f.startswith("--lgb-") or f == "--ranker-models"}
    with pytest.raises(SystemExit):
        parse_args(["task_duration", "--train-uri", "t", "--valid-uri", "v", "--lgb-num-leaves", "63"])


def test_overrides_become_flags_of_the_model() -> None:
    assert override_arguments("task_assignment", {"lgb-num-leaves": 63, "learning-rate": 0.001}) == [
        "--learning-rate", "0.001", "--lgb-num-leaves", "63"]
    assert override_arguments("task_duration", {"--epochs": 3}) == ["--epochs", "3"]


def test_an_unknown_override_names_the_models_valid_flags() -> None:
    with pytest.raises(HyperparameterError, match="no-such-flag") as raised:
        override_arguments("task_duration", {"no-such-flag": 1})
    message = str(raised.value)
    assert "valid flags:" in message and "epochs" in message and "learning-rate" in message
    assert "lgb-num-leaves" not in message and "train-uri" not in message
    with pytest.raises(HyperparameterError, match="lgb-num-leaves"):
        override_arguments("task_duration", {"lgb-num-leaves": 63})


def test_an_ill_typed_override_is_refused_with_the_parsers_message() -> None:
    with pytest.raises(HyperparameterError, match="invalid int value"):
        override_arguments("task_assignment", {"lgb-num-leaves": "many"})


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="known models"):
        override_arguments("task_priority", {})


def test_a_run_is_named_after_its_model_and_window_end() -> None:
    from maestro_ml.training.cli import run_name

    assert run_name("task_duration", {"window_end": "2026-11-15T00:00:00+00:00"}) == "task_duration-2026-11-15T00"
    assert run_name("task_assignment", {}, now=0) == "task_assignment-1970-01-01T0000"


def test_run_flags_are_not_hyperparameters() -> None:
    with pytest.raises(HyperparameterError, match="run-name"):
        override_arguments("task_duration", {"run-name": "x"})


def test_the_data_floor_names_every_short_split() -> None:
    from maestro_ml.contracts.models import DataFloor, TooLittleDataError

    floor = DataFloor(train=10, evaluate=5)
    floor.check("m", {"train": 10, "valid": 5, "test": 5})
    with pytest.raises(TooLittleDataError, match=r"train 8 \(needs 10\), test 1 \(needs 5\); widen the window"):
        floor.check("m", {"train": 8, "valid": 73, "test": 1})
