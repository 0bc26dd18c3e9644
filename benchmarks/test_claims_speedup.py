"""The claims command per Dynamic Obstacles checkpoint, today's code beside the code issue 29 started from, in one
run on one machine (issue 29's first "Done when").

Each baseline is a git worktree of an older commit, run by the same interpreter and packages with PYTHONPATH
pointing at it; the three trees take turns for every round, so a slow minute of a noisy host falls on all of them
alike. Each tree runs its own claims on its own copy of the checkpoint (the weights are the same bytes in all
three): the older trees have fewer claims and recipes, so the figures name the number of claims each ran.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.worktrees import git_worktrees
from dt_circuits.core.paths import REPO_ROOT, reference_checkpoint

#: label -> commit: the code when issue 29 was filed (the wave-2 review, 22 claims, four recipes), this wave's
#: code just before its speed work (26 claims, five recipes with the counterfactual patch) and the code before the
#: last round of speed work (29 claims: before TransformerLens was imported without its package __init__s; the
#: rounds before, 355d20a and 6747c35, are in git history and README's brackets)
ALL_BASELINES = {
    "2026-11-26 (issue filed)": "2e25cd0",
    "2026-12-06 before the speed work": "ca1f360",
    "2026-12-07 20:00": "646cd1a",
}
#: DT_CIRCUITS_SPEEDUP_BASELINES=646cd1a (commits, comma-separated) times today beside those alone: the two older
#: trees take ~3x as long per run as today's
_ONLY = [c for c in os.environ.get("DT_CIRCUITS_SPEEDUP_BASELINES", "").split(",") if c]
BASELINES = {label: commit for label, commit in ALL_BASELINES.items() if not _ONLY or commit in _ONLY}
#: where each tree keeps its own shipped checkpoints (they moved into the package and back out)
CHECKPOINT_DIRS = {"2e25cd0": "dt_circuits/checkpoints", "ca1f360": "checkpoints", "646cd1a": "checkpoints",
                   "HEAD": "checkpoints"}  # fmt: skip
ROUNDS = int(os.environ.get("DT_CIRCUITS_SPEEDUP_ROUNDS", "2"))
_SUMMARY = re.compile(r"(\d+)/(\d+) claims match expectations on .* \(([\d.]+) s\)")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """label -> (source tree, its checkpoints folder): the baselines as worktrees, then this checkout."""
    with git_worktrees(tmp_path_factory.mktemp("baselines"), BASELINES) as made:
        out = {label: (where, where / CHECKPOINT_DIRS[BASELINES[label]]) for label, where in made.items()}
        out["today (HEAD)"] = (REPO_ROOT, REPO_ROOT / CHECKPOINT_DIRS["HEAD"])
        yield out


def _run(tree: Path, checkpoint: Path, cwd: Path) -> tuple[float, int, float]:
    """(whole command seconds, claims run, the claims' own seconds as the command reports them)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "dt_circuits.cli", "claims", "--checkpoint", str(checkpoint), "--no-report"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    found = _SUMMARY.search(proc.stdout)
    assert proc.returncode == 0 and found, f"{tree}: rc {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return seconds, int(found.group(2)), float(found.group(3))


@pytest.mark.parametrize("name", ["raw-index", "one-hot", "dti-reference"])
def test_claims_command_today_beside_its_baselines(benchmark, figure, trees, name, tmp_path):
    def checkpoint(folder: Path) -> Path:
        if name == "dti-reference":
            ref = reference_checkpoint()
            return ref if ref.exists() else pytest.skip(f"the DTI reference is not in {ref.parent}")
        return folder / name

    # untimed: each tree's disk cache then holds the walk, the rendered families and this checkpoint's rollouts
    # and fits, as after a first run (rollouts are keyed by the model code: a tree whose code changed has none)
    for tree, folder in trees.values():
        _run(tree, checkpoint(folder), tmp_path)
    times: dict[str, list[float]] = {label: [] for label in trees}
    counts: dict[str, int] = {}

    def rounds() -> None:
        for _ in range(ROUNDS):
            for label, (tree, folder) in trees.items():
                seconds, n_claims, _ = _run(tree, checkpoint(folder), tmp_path)
                times[label].append(seconds)
                counts[label] = n_claims

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    today = statistics.median(times["today (HEAD)"])
    for label, values in times.items():
        median = statistics.median(values)
        figure(benchmark, f"claims command {name}, {label}: s ({counts[label]} claims)", median, "{:.1f}")
        figure(benchmark, f"claims command {name}, {label}: s per claim", median / counts[label], "{:.2f}")
        if label != "today (HEAD)":
            figure(benchmark, f"claims command {name}, today ÷ {label}", today / median, "{:.2f}")
