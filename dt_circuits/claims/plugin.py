"""The dt-circuits pytest plugin (entry point ``pytest11``): claims as test items in any repository.

With ``pip install dt-circuits`` a repository gets, with no conftest of its own:

* every claim file in the claims folder (``--claims-dir DIR``, ini ``dt_circuits_claims_dir``, default ``claims``)
  collected as one item per checkpoint;
* ``--checkpoint=PATH`` (repeatable; ini ``dt_circuits_checkpoints``), default the checkpoints this package
  ships, plus the DTI reference when ``../shared`` has it. Write it with ``=``: pytest finds its rootdir (and
  so its ini file) before plugins add options, and would take a separate ``PATH`` for a test path (so
  ``--checkpoint PATH`` on the command line is a usage error naming the fix);
* ``--roles FILE``, a JSON roles file;
* a claim recorded as failing on a checkpoint runs as a *strict* xfail: it xfails with its numbers and the
  test FAILS if the claim starts to hold, so a record never goes stale;
* a "claims" section in the terminal summary.

A claims folder that was asked for (option or ini) but is missing or holds no claim is a usage error: a claims
run that found nothing must never pass. This module imports nothing heavy, so it costs unrelated test runs
nothing; torch loads only when a claim is collected.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from dt_circuits.core.paths import checkpoint_label

DEFAULT_CLAIMS_DIR = "claims"
_RUNS = pytest.StashKey[list]()
_SELECTED = pytest.StashKey[dict]()
_CLAIMS_DIR = pytest.StashKey[Path | None]()
_SUBJECTS: dict[tuple[str, str | None, str, str], Any] = {}


def claims_group(checkpoint: str | Path) -> str:
    """The pytest-xdist group of every claim item on ``checkpoint`` (``--dist loadgroup``: one worker, and so one
    subject, its rollouts and its caches). No brackets: xdist 3.8 reads a node id's group only from an ``@`` after
    its last ``]``, and takes a node id whose group ends in ``]`` (``claims[raw-index]``) as a group of its own, so
    such a checkpoint's claims were spread over both workers, one module each, and the determinism test's reference
    suite (which joins this group) was computed on both."""
    return "claims-" + checkpoint_label(checkpoint).replace("[", "(").replace("]", ")")


class ClaimMismatch(AssertionError):
    """The verdict differs from what is recorded for this checkpoint."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dt-circuits", "dt-circuits claims")
    group.addoption(
        "--claims-dir",
        default=None,
        metavar="DIR",
        help=f"folder of claim files to collect (default: ini dt_circuits_claims_dir, else ./{DEFAULT_CLAIMS_DIR})",
    )
    group.addoption(
        "--checkpoint",
        action="append",
        default=[],
        metavar="PATH",
        help="run the claims on this checkpoint (our directory or a DTI .pt); repeatable",
    )
    group.addoption("--roles", default=None, metavar="FILE", help="JSON roles file binding roles to components")
    from dt_circuits.core.backends import ENV_BACKEND_HELP, ENV_BACKENDS

    group.addoption(
        "--env-backend",
        default=None,
        choices=ENV_BACKENDS,
        help=ENV_BACKEND_HELP + "; default: ini dt_circuits_env_backend, else envpool",
    )
    parser.addini("dt_circuits_env_backend", "who steps the env in the claims' rollout checks", default=None)
    parser.addini("dt_circuits_claims_dir", "folder of claim files, relative to the rootdir", default=None)
    parser.addini("dt_circuits_checkpoints", "checkpoints the claims run on, relative to the rootdir", type="linelist")


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """``--checkpoint PATH`` (a space) on the command line is a usage error, not a silent "no tests ran": pytest
    has already taken PATH for a test path and looked for its rootdir and ini there, before this plugin's
    options existed."""
    args = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, early_config.invocation_params.args)]
    args = args[: args.index("--")] if "--" in args else args
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "--checkpoint" and not value.startswith("-"):
            raise pytest.UsageError(
                f"dt-circuits: use --checkpoint={value} (with '='): pytest takes a separate PATH for a test path, "
                "and finds its rootdir and ini from it before plugins add options"
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim: a dt-circuits claim evaluated on one checkpoint")
    config.stash[_CLAIMS_DIR] = _claims_dir(config)


def _claims_dir(config: pytest.Config) -> Path | None:
    """The claims folder, or None when none was asked for and ./claims does not exist (plugin stays idle)."""
    option = config.getoption("claims_dir")
    ini = config.getini("dt_circuits_claims_dir")
    if option:
        where, asked = Path(option), f"--claims-dir {option}"
        where = where if where.is_absolute() else Path(config.invocation_params.dir) / where
    elif ini:
        where, asked = config.rootpath / ini, f"ini dt_circuits_claims_dir = {ini}"
    else:
        where = config.rootpath / DEFAULT_CLAIMS_DIR
        return where.resolve() if where.is_dir() else None
    if not where.is_dir():
        raise pytest.UsageError(f"dt-circuits: claims folder {where} does not exist ({asked})")
    from dt_circuits.claims.suite.discovery import claim_files

    if not claim_files(where):
        raise pytest.UsageError(f"dt-circuits: no claim files in {where} ({asked}); a claims run must find claims")
    return where.resolve()


def _checkpoints(config: pytest.Config, claim: Any = None) -> list[str]:
    """The checkpoints a claim runs on: those asked for (a claim of another env family then skips as not
    applicable), else the defaults of the claim's env family."""
    given = config.getoption("checkpoint")
    if given:
        return [str(Path(p)) for p in given]
    ini = config.getini("dt_circuits_checkpoints")
    if ini:
        return [str(p if Path(p).is_absolute() else config.rootpath / p) for p in ini]
    from dt_circuits.claims.suite.discovery import checkpoint_family, default_checkpoints

    paths = default_checkpoints()
    if claim is None:
        return paths
    return [p for p in paths if checkpoint_family(p) in (claim.env, None)]


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    claims_dir = parent.config.stash.get(_CLAIMS_DIR, None)
    if claims_dir is None or file_path.parent.resolve() != claims_dir or file_path.suffix != ".py":
        return None
    from dt_circuits.claims.suite.discovery import claim_files

    if file_path.resolve() in {p.resolve() for p in claim_files(claims_dir)}:
        return ClaimFile.from_parent(parent, path=file_path)
    return None


class ClaimFile(pytest.File):
    def collect(self):
        from dt_circuits.claims.suite.discovery import load_claim

        claim = load_claim(self.path)
        for path in _checkpoints(self.config, claim):
            yield ClaimItem.from_parent(
                self, name=f"{claim.id}[{checkpoint_label(path)}]", claim=claim, checkpoint=path
            )


def env_backend(config: pytest.Config) -> str:
    """The claims' rollout backend: --env-backend, else ini dt_circuits_env_backend, else the default (envpool)."""
    from dt_circuits.core.backends import DEFAULT_ENV_BACKEND, check_env_backend

    return check_env_backend(
        config.getoption("env_backend") or config.getini("dt_circuits_env_backend") or DEFAULT_ENV_BACKEND
    )


def _subject(path: str, roles: str | None, claims_dir: Path, claims: list, backend: str):
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.suite.discovery import rollout_requests

    key = (path, roles, str(claims_dir), backend)
    if key not in _SUBJECTS:
        from dt_circuits.claims.suite.discovery import for_claims_dir

        subject = Subject.load(path, roles_file=roles, expectations_dir=claims_dir / "expectations")
        subject.env_backend = backend
        subject.comparisons = for_claims_dir(claims_dir)  # the whole folder is the family, whatever -k selects
        # the rollout checks of every claim selected for this checkpoint at once, on every core
        subject.prefetch_rollouts(rollout_requests([c for c in claims if c.env == subject.env_family]))
        _SUBJECTS[key] = subject
    return _SUBJECTS[key]


def _f(x: float) -> str:
    return "n/a" if x != x else f"{x:+.4f}"


class ClaimItem(pytest.Item):
    def __init__(self, *, claim, checkpoint: str, **kwargs):
        super().__init__(**kwargs)
        self.claim = claim
        self.checkpoint = checkpoint
        self.add_marker(pytest.mark.claim)
        if self.config.pluginmanager.hasplugin("xdist"):
            # pytest-xdist --dist loadgroup: every claim on one checkpoint shares one worker (and its rollouts)
            self.add_marker(pytest.mark.xdist_group(claims_group(checkpoint)))

    def runtest(self) -> None:
        from dt_circuits.claims.suite.run import run_claim

        if not Path(self.checkpoint).exists():
            msg = f"checkpoint missing: {self.checkpoint}"
            if "shared" in Path(self.checkpoint).parts:
                msg += " (the DTI reference: see README 'The published DTI checkpoints')"
                if os.environ.get("CI"):
                    pytest.fail(msg + "; CI must have ../shared")
            pytest.fail(msg)
        from dt_circuits.core.threads import claims_threads

        claims = self.config.stash.get(_SELECTED, {}).get(self.checkpoint, [self.claim])
        claims_dir = self.config.stash[_CLAIMS_DIR]
        with claims_threads():  # the CLI's thread policy for the claim, the user's own for their other tests
            subject = _subject(
                self.checkpoint, self.config.getoption("roles"), claims_dir, claims, env_backend(self.config)
            )
            if self.claim.env != subject.env_family:
                pytest.skip(
                    f"not applicable: {self.claim.id} is about {self.claim.env} checkpoints, not {subject.env_family}"
                )
            run = run_claim(self.claim, subject)
        self.config.stash.setdefault(_RUNS, []).append((self.checkpoint, run))
        details = (
            "\n".join(
                f"  {'ok  ' if c.holds else 'FAIL'} [{c.kind}] {c.name}: {c.numbers(_f)} "
                f"needs {c.bound} (n={c.n} in {c.n_clusters} {c.cluster_unit}) — {c.describe}"
                for c in run.verdict.checks
            )
            + f"\n  reason: {run.verdict.reason}"
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which claims run on each checkpoint after -k/-m selection, so only their rollouts are made."""
    selected: dict[str, list] = {}
    for item in session.items:
        if isinstance(item, ClaimItem):
            selected.setdefault(item.checkpoint, []).append(item.claim)
    session.config.stash[_SELECTED] = selected


def claim_runs(config: pytest.Config, checkpoint: str | Path) -> list:
    """The ``ClaimRun`` of every claim item on ``checkpoint`` that has run in this process so far, in the order
    they ran (a test can read what the plugin measured instead of measuring it again)."""
    path = Path(checkpoint).resolve()
    return [run for run_checkpoint, run in config.stash.get(_RUNS, []) if Path(run_checkpoint).resolve() == path]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    runs = config.stash.get(_RUNS, [])
    if not runs:
        return
    terminalreporter.section("claims")
    for checkpoint, run in runs:
        label = checkpoint_label(checkpoint)
        h = run.verdict.headline
        terminalreporter.write_line(
            f"{label:<16} {run.claim.id:<30} {run.verdict.verdict:<6} (expected {run.expected:<5}) "
            f"{run.verdict.reason:<16} {h.numbers(_f)} needs {h.bound}"
            + (f" RECIPE-DEPENDENT ({run.verdict.recipe_dependent})" if run.verdict.recipe_dependent else "")
            + (f"; failing: {'; '.join(run.verdict.failing_checks)}" if run.verdict.failing_checks else "")
        )
