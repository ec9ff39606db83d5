"""Batch work (feature builds, materialization, trainings) yields the CPU to the hourly ingestion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")

PROBE = """
import os, subprocess, sys
if len(sys.argv) > 1:
    os.nice(int(sys.argv[1]))
from maestro_ml.orchestration.defaults import lower_cpu_priority
lower_cpu_priority({})
lower_cpu_priority({})  # a second call (a retry in the same process) does not lower it further
child = subprocess.run([sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
                       capture_output=True, text=True, check=True).stdout.strip()
print(os.getpriority(os.PRIO_PROCESS, 0), child)
"""


def _niceness_after_callback(batch_nice: str, start: int = 0) -> list[int]:
    env = {**os.environ, "PYTHONPATH": PLUGINS, "MAESTRO_BATCH_NICE": batch_nice}
    args = [sys.executable, "-c", PROBE] + ([str(start)] if start else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout.split()
    return [int(v) for v in out]


def test_the_callback_sets_the_configured_niceness_and_children_inherit_it() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert _niceness_after_callback(str(base + 7)) == [base + 7, base + 7]


def test_the_callback_never_raises_a_process_priority() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert _niceness_after_callback(str(base + 3), start=5) == [base + 5, base + 5]
    assert _niceness_after_callback("0") == [base, base]
