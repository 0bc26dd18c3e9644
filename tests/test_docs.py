"""The worked example in docs/adding-a-claim.md is a real claim that loads and runs."""

from __future__ import annotations

import re

import pytest

from dt_circuits.claims.discovery import load_claim
from dt_circuits.claims.subject import Subject
from dt_circuits.core.paths import REPO_ROOT
from tests.helpers import random_model


def _example(tmp_path):
    text = (REPO_ROOT / "docs" / "adding-a-claim.md").read_text()
    code = re.search(r"<!-- example-claim -->\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 20, "the worked example must stay within 20 lines"
    path = tmp_path / "wall_avoidance_without_goal_head.py"
    path.write_text(code)
    return load_claim(path)


def test_worked_example_is_a_runnable_claim(tmp_path):
    claim = _example(tmp_path)
    verdict = claim.evaluate(Subject.from_model(random_model(0, scale=1.0), name="random"))
    assert verdict.checks[0].n > 10 and verdict.verdict in ("holds", "fails")


@pytest.mark.reference
def test_worked_example_on_the_reference(tmp_path, reference_model):
    verdict = _example(tmp_path).evaluate(Subject.from_model(reference_model))
    print(verdict.summary())
    assert verdict.checks[0].n > 10
