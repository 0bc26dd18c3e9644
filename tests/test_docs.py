"""The worked example in docs/adding-a-claim.md is a real claim that loads and runs."""

from __future__ import annotations

import re

import pytest

from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.suite.discovery import load_claim
from dt_circuits.core.paths import REPO_ROOT
from tests.helpers import random_model


def _example(tmp_path):
    text = (REPO_ROOT / "docs" / "adding-a-claim.md").read_text()
    code = re.search(r"<!-- example-claim -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20, "the worked example must stay within 20 lines"
    path = tmp_path / "obstacle_head_walks_into_balls.py"
    path.write_text(code)
    return load_claim(path)


def test_worked_example_is_a_runnable_claim(tmp_path):
    claim = _example(tmp_path)
    assert [c.kind for c in claim.checks] == ["baseline", "effect", "control"]
    assert claim.falsified_by == ("swapped-heads", "random-init")
    # its promised control: on a random initialisation the claim must not hold
    verdict = claim.evaluate(Subject.from_model(random_model(0, scale=1.0), name="random"))
    assert verdict.checks[0].n > 10 and not verdict.holds, verdict.summary()
    effect = next(c for c in verdict.checks if c.kind == "effect")
    assert effect.primary_recipe == "zero" and {"zero", "mean", "mean-rtg-mix", "resample", "dti-dhead-mean"} <= set(
        effect.recipes
    )


def test_worked_example_is_collected_by_the_real_pytest_plugin(tmp_path):
    """The example, in a claims folder of its own, is collected by the installed plugin as one item per checkpoint.

    Collection only: its evaluation is ``test_worked_example_is_a_runnable_claim`` above (in process), and the
    plugin running a user's claim file on raw-index end to end is ``tests/test_wheel.py``'s init test (from an
    installed wheel) and the app's saved-claim tests; running it here too cost ~30 s of the test command."""
    import subprocess
    import sys

    from dt_circuits.core.paths import CHECKPOINTS_DIR

    claims = tmp_path / "claims"
    claims.mkdir()
    _example(claims)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", "--claims-dir",
         str(claims), f"--checkpoint={CHECKPOINTS_DIR / 'raw-index'}", str(claims)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "obstacle-head-walks-into-balls[raw-index]" in text and "1 test collected" in text, text


@pytest.mark.reference
def test_worked_example_on_the_reference(tmp_path, reference_model):
    verdict = _example(tmp_path).evaluate(Subject.from_model(reference_model))
    print(verdict.summary())
    assert verdict.checks[0].n > 10


def test_reliability_flake_tables_are_generated_from_the_summaries():
    """docs/reliability.md's flake-check tables are docs/flake_tables.py's rendering of docs/flakechecks/*.json,
    one section per checkpoint flake-checked (never typed by hand)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("flake_tables", REPO_ROOT / "docs" / "flake_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    summaries = tables.load_summaries()
    reference = "dti-dynamic-obstacles-reproduce-original-post-short"
    assert {s["name"] for s in summaries} >= {"raw-index", "one-hot", reference}
    assert all(s["runs"] >= 20 for s in summaries)
    assert tables.block(tables.PAGE.read_text()) == tables.render(summaries), (
        "run .venv/bin/python docs/flake_tables.py to regenerate docs/reliability.md's flake tables"
    )
