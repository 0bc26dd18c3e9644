"""CLI start-up: ``dt-circuits --help`` and an argument error, as whole processes, against bare Python.

A user who mistypes a flag should hear about it at once; before commands built their arguments lazily and
imported torch only to run, ``--help`` took 4–13 s. Goal: < 1 s for both, measured beside a bare
``python -c pass`` in the same run so the ratio survives a slow machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

CASES = {
    "--help": ["--help"],
    "claims --help": ["claims", "--help"],
    "train --help": ["train", "--help"],
    "argument error": ["claims", "--no-such-flag"],
}


def _seconds(cmd: list[str], rounds: int = 5) -> float:
    """Median wall time of ``cmd`` over ``rounds`` runs."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@pytest.mark.parametrize("case", CASES)
def test_cli_answers_within_a_second(benchmark, figure, case):
    exe = shutil.which("dt-circuits") or pytest.skip("dt-circuits is not on PATH")
    cmd = [exe, *CASES[case]]
    benchmark.pedantic(lambda: subprocess.run(cmd, capture_output=True), rounds=5, iterations=1)
    seconds = benchmark.stats.stats.median
    bare = _seconds([sys.executable, "-c", "pass"])
    figure(benchmark, f"dt-circuits {case}: seconds", seconds, "{:.2f}")
    figure(benchmark, f"dt-circuits {case} ÷ bare python", seconds / bare, "{:.1f}")
    assert seconds < 1.0, f"dt-circuits {' '.join(CASES[case])} took {seconds:.2f} s (goal < 1 s)"
