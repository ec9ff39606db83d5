"""Coverage-guided fuzz targets (atheris / libFuzzer) for the landing-file decoder.

Two targets, one per entry point of ``maestro_ml.ingestion.decode``:

* ``text``: the line decoder, ``decode_text(uri, bytes)``, on the decompressed text of a file;
* ``file``: the file decoder, ``decode_file(uri)``, on raw bytes as they land (gzip members, truncated
  or not, or not gzip at all), read from an in-memory file system.

The decoder promises never to raise on bad input: every line it cannot use is a quarantine decision
with a reason. So any exception is a finding, and so is a broken promise about the result:

* every non-blank line is either decoded or quarantined, once (``lines_in`` = rows + quarantined);
* quarantine reasons are the contract's.

(That results never depend on the path taken is a promise of the parse, after the row checks: a line
without ``event_id`` decodes on the fast path and is quarantined by the row checks, while the slow path
quarantines it at once. ``tests/unit/test_decode_property.py`` holds the parse to it; a first version of
this target compared the decoder's two paths directly and flagged exactly that, within seconds.)

Run (``tests/fuzz/test_fuzz_decoder.py`` does, for a bounded time, in ``make test``)::

    PYTHONPATH=plugins .venv/bin/python tests/fuzz/fuzz_decode.py text -max_total_time=60 NEW_DIR tests/fuzz/corpus/decode_text

libFuzzer flags follow the target name; new inputs go to the first corpus folder given. The kept corpus
is a few hand-made seeds plus every input that reached new coverage in a 2-minute run per target
(2026-12-03: 200,129 and 161,450 runs, no finding once the decoder's two paths were no longer
compared directly; see above).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["maestro_ml.ingestion"]):
    from maestro_ml import storage
    from maestro_ml.ingestion import decode
    from maestro_ml.ingestion.contract import REASONS

MEMORY_URI = "memory://fuzz/events/dt=2026-11-20/hour=10/part-0000.jsonl.gz"


def check(result: decode.DecodedFile) -> None:
    rows, quarantined = result.table.num_rows, len(result.quarantine)
    if result.lines_in != rows + quarantined:
        raise AssertionError(f"lines_in {result.lines_in} != {rows} decoded + {quarantined} quarantined")
    if len(result.line_numbers) != rows:
        raise AssertionError("line numbers not aligned with the rows")
    numbers = [entry[0] for entry in result.quarantine] + [int(n) for n in result.line_numbers]
    if len(set(numbers)) != len(numbers):
        raise AssertionError(f"a line was counted twice: {sorted(numbers)}")
    unknown = {entry[1] for entry in result.quarantine} - set(REASONS)
    if unknown:
        raise AssertionError(f"quarantine reasons outside the contract: {unknown}")


def one_text(data: bytes) -> None:
    check(decode.decode_text("fuzz.jsonl", data))


def one_file(data: bytes) -> None:
    with storage.atomic_open(MEMORY_URI) as handle:
        handle.write(data)
    check(decode.decode_file(MEMORY_URI))


TARGETS = {"text": one_text, "file": one_file}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: fuzz_decode.py {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
