"""The landing-file decoder under coverage-guided fuzzing (atheris), for a bounded time in ``make test``.

Each target of ``tests/fuzz/fuzz_decode.py`` runs in its own process (libFuzzer takes the process over)
for ``FUZZ_SECONDS``, starting from the kept corpus (``tests/fuzz/corpus/<target>``, read only: new
inputs go to a temporary folder). Any exception, or a broken promise about the result, is a crash:
libFuzzer exits non-zero and leaves the input that caused it, which the failure message shows.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FUZZ_SECONDS = int(os.environ.get("MAESTRO_FUZZ_SECONDS", "30"))
# A fixed seed: a CI failure can be replayed as it happened. Longer hunts pick their own (MAESTRO_FUZZ_SEED=0).
FUZZ_SEED = os.environ.get("MAESTRO_FUZZ_SEED", "1")


@pytest.mark.parametrize(("target", "corpus"), [("text", "decode_text"), ("file", "decode_file")])
def test_the_decoder_survives_coverage_guided_fuzzing(target: str, corpus: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (requirements-dev.txt)")
    kept = HERE / "corpus" / corpus
    assert any(kept.iterdir()), f"no seed inputs in {kept}"
    found = tmp_path / "found"
    found.mkdir()
    cmd = [sys.executable, str(HERE / "fuzz_decode.py"), target, f"-max_total_time={FUZZ_SECONDS}",
           f"-seed={FUZZ_SEED}", "-max_len=4096", "-timeout=20", "-rss_limit_mb=3072", f"-artifact_prefix={tmp_path}/",
           str(found), str(kept)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=FUZZ_SECONDS + 240, check=False)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert done.returncode == 0 and not crashes, (
        f"fuzz target {target!r} failed (exit {done.returncode}); inputs left: {crashes}\n{done.stderr[-4000:]}")
    assert "Done" in done.stderr and "runs in" in done.stderr, done.stderr[-2000:]
