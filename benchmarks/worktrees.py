"""Older trees of this repository as git worktrees, to time beside today's code in one run."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dt_circuits.core.paths import REPO_ROOT


@contextmanager
def git_worktrees(root: Path, commits: dict[str, str]) -> Iterator[dict[str, Path]]:
    """label -> a detached git worktree of each commit under ``root`` (an older tree to time beside today's, run
    with PYTHONPATH pointing at it), removed afterwards; skips the benchmark when this clone lacks the history."""
    git = shutil.which("git")
    if git is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout with history (the baselines are older commits)")
    made: list[Path] = []
    try:
        out = {}
        for label, commit in commits.items():
            where = root / commit
            proc = subprocess.run([git, "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-f", str(where), commit],
                                  capture_output=True, text=True)  # fmt: skip
            if proc.returncode != 0:
                pytest.skip(f"baseline {commit} not in this clone's history: {proc.stderr.strip()}")
            made.append(where)
            out[label] = where
        yield out
    finally:
        for where in made:
            remove = [git, "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(where)]
            subprocess.run(remove, capture_output=True)
