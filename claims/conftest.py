"""Collects every claim file in this folder as one test item per checkpoint.

``pytest claims/`` runs each claim on every checkpoint in ``checkpoints/`` and on the DTI reference (when
``../shared`` has it; under CI it must). ``--checkpoint PATH`` (repeatable) and ``--roles FILE`` choose others.
A claim recorded as failing for a checkpoint is a strict xfail: it xfails with the measured numbers, and the
test FAILS if the claim starts to hold, so the record never goes stale.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dt_circuits.suite import (
    ClaimRun,
    claim_files,
    default_checkpoints,
    load_claim,
    rollout_requests,
    run_claim,
)

CLAIMS_DIR = Path(__file__).parent
_SUBJECTS: dict[tuple[str, str | None], object] = {}


class ClaimMismatch(AssertionError):
    """The verdict differs from what is recorded for this checkpoint."""


def _subject(path: str, roles: str | None, claims: list):
    from dt_circuits.subject import Subject

    key = (path, roles)
    if key not in _SUBJECTS:
        subject = Subject.load(path, roles_file=roles)
        # the rollout checks of every claim selected for this checkpoint at once, on every core
        # (the numbers do not depend on it)
        subject.prefetch_rollouts(rollout_requests(claims))
        _SUBJECTS[key] = subject
    return _SUBJECTS[key]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which claims run on each checkpoint after -k/-m selection, so only their rollouts are made."""
    selected: dict[str, list] = {}
    for item in session.items:
        if isinstance(item, ClaimItem):
            selected.setdefault(item.checkpoint, []).append(item.claim)
    session.config.stash[_SELECTED] = selected


def _label(path: str) -> str:
    p = Path(path)
    return "dti-reference" if p.suffix == ".pt" and "shared" in p.parts else p.stem if p.is_file() else p.name


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.parent == CLAIMS_DIR and file_path in claim_files(CLAIMS_DIR):
        return ClaimFile.from_parent(parent, path=file_path)
    return None


class ClaimFile(pytest.File):
    def collect(self):
        claim = load_claim(self.path)
        paths = self.config.getoption("checkpoint") or default_checkpoints()
        for path in paths:
            yield ClaimItem.from_parent(self, name=f"{claim.id}[{_label(path)}]", claim=claim, checkpoint=path)


class ClaimItem(pytest.Item):
    def __init__(self, *, claim, checkpoint: str, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        self.checkpoint = checkpoint
        self.add_marker(pytest.mark.claim)

    def runtest(self) -> None:
        if not Path(self.checkpoint).exists() and "shared" in Path(self.checkpoint).parts:
            pytest.fail(f"reference checkpoint missing at {self.checkpoint} (CI must have ../shared)")
        claims = self.config.stash.get(_SELECTED, {}).get(self.checkpoint, [self.claim])
        subject = _subject(self.checkpoint, self.config.getoption("roles"), claims)
        run: ClaimRun = run_claim(self.claim, subject)
        self.config.stash.setdefault(_RUNS, []).append((_label(self.checkpoint), run))
        details = "\n".join(
            f"  {'ok  ' if c.holds else 'FAIL'} {c.name}: {c.effect:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] "
            f"needs {c.bound} (n={c.n}, {c.frac_as_predicted:.0%} of examples as predicted) — {c.describe}"
            for c in run.verdict.checks
        )
        if run.expected == "fails":
            if run.verdict.holds:
                raise ClaimMismatch(
                    f"{self.claim.id} now HOLDS on {subject.name} but is recorded as failing; "
                    f"re-record its expectation deliberately.\n{details}"
                )
            pytest.xfail(f"recorded negative result: {run.verdict.summary()}")
        if not run.verdict.holds:
            raise ClaimMismatch(f"{self.claim.id} FAILS on {subject.name}:\n{details}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ClaimMismatch):
            return f"{self.claim.statement}\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, 0, f"claim {self.claim.id} on {self.checkpoint}"


_RUNS = pytest.StashKey[list]()
_SELECTED = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    runs = config.stash.get(_RUNS, [])
    if not runs:
        return
    terminalreporter.section("claims")
    for label, run in runs:
        h = run.verdict.headline
        terminalreporter.write_line(
            f"{label:<16} {run.claim.id:<30} {run.verdict.verdict:<6} (expected {run.expected:<5}) "
            f"{h.effect:+.3f} [{h.ci_low:+.3f}, {h.ci_high:+.3f}] needs {h.bound}"
        )
