"""ruff (lint and format, configured in pyproject.toml) is part of the test command."""

from __future__ import annotations

import subprocess
import sys

from dt_circuits.core.paths import REPO_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff_lint_is_clean():
    proc = _ruff("check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean():
    proc = _ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr
