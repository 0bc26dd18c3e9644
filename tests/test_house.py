"""The package's front doors: the pytest plugin, the CLI, progress output, published-checkpoint hashes."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dt_circuits.core.errors import CheckpointError
from dt_circuits.core.progress import SummaryLines, progress

pytest_plugins = ["pytester"]


def test_plugin_discovery_and_cli_load_without_torch():
    """The plugin loads in every pytest run of every repo with dt-circuits installed: it must stay light."""
    code = (
        "import sys, dt_circuits.claims.plugin, dt_circuits.claims.suite.discovery, dt_circuits.cli; "
        "from dt_circuits.cli import build_parser; build_parser(['claims']); build_parser(['train']); "
        "heavy = sorted(m for m in ('torch', 'transformer_lens', 'minigrid', 'gymnasium') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "dt_circuits"]
    assert ep.value == "dt_circuits.claims.plugin"


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--claims-dir", "nowhere"], "does not exist"),
        ("empty", ["--claims-dir", "claims"], "no claim files"),
        ("ini-empty", [], "no claim files"),
    ],
)
def test_a_claims_folder_that_was_asked_for_must_hold_claims(pytester, setup, args, message):
    if setup in ("empty", "ini-empty"):
        pytester.mkdir("claims")
        (pytester.path / "claims" / "_helpers.py").write_text("X = 1\n")  # not a claim file
    if setup == "ini-empty":
        pytester.makeini("[pytest]\ndt_circuits_claims_dir = claims\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_without_a_claims_folder_the_plugin_stays_idle(pytester):
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_claim_files_are_collected_per_checkpoint_with_ids(pytester):
    pytester.mkdir("claims")
    (pytester.path / "claims" / "rtg_cosine.py").write_text(
        textwrap.dedent(
            """
            from dt_circuits.claim import Check, Claim, Weights, forward_right_unembed

            def cosine(subject):
                import torch
                w = subject.model.W_rtg.double()
                u = forward_right_unembed(subject)
                return float(w @ u / (w.norm() * u.norm()))

            CLAIM = Claim(
                id="rtg-cosine", statement="W_rtg along forward - right", source="post Fig. 11",
                kind="embedding",
                checks=(Check("cosine", Weights(cosine, "cosine of W_rtg and forward - right"), at_least=-2.0),),
            )
            """
        )
    )
    from dt_circuits.core.paths import CHECKPOINTS_DIR

    # --checkpoint=PATH, not "--checkpoint PATH": pytest finds its rootdir before plugins add their options,
    # so a separate value would be taken for a test path and move the rootdir (and the ini it reads)
    result = pytester.runpytest_subprocess(
        "--collect-only", "-q", f"--checkpoint={CHECKPOINTS_DIR / 'raw-index'}",
        f"--checkpoint={CHECKPOINTS_DIR / 'one-hot'}",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*rtg_cosine.py::rtg-cosine?raw-index?*", "*rtg_cosine.py::rtg-cosine?one-hot?*"])


def test_checkpoint_with_a_space_is_a_usage_error_naming_the_fix(pytester):
    """In a repository made by ``dt-circuits init``, ``pytest --checkpoint PATH`` ran nothing and exited 5 ("no
    tests ran"): PATH was taken for a test path and moved the rootdir away from the repository's pytest.ini."""
    from dt_circuits.cli import main
    from dt_circuits.core.paths import CHECKPOINTS_DIR

    assert main(["init", str(pytester.path)]) == 0
    path = CHECKPOINTS_DIR / "raw-index"
    result = pytester.runpytest_subprocess("--collect-only", "-q", "--checkpoint", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [x for x in result.stderr.lines if x.strip()]
    assert f"use --checkpoint={path} (with '=')" in line


def test_summary_lines_off_a_terminal_print_a_bounded_number_of_lines():
    out = io.StringIO()
    clock = iter(range(0, 10_000)).__next__  # one second per call
    bar = SummaryLines(1000, "train", "step", stream=out, every_seconds=1e9, clock=clock)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # every 10 % up to 90 %, then one closing line at 100 %
    assert lines[0].startswith("train: 100/1000 step (10 %)") and lines[-1].endswith("done")
    assert [line for line in lines if "(100 %)" in line] == lines[-1:]
    assert "\r" not in out.getvalue()


def test_summary_lines_also_print_every_so_many_seconds():
    out = io.StringIO()
    t = [0.0]
    bar = SummaryLines(10**6, "rollouts", "ep", stream=out, every_seconds=30, clock=lambda: t[0])
    for _ in range(5):
        t[0] += 31
        bar.update(1)
    assert len(out.getvalue().splitlines()) == 5


def test_progress_is_silent_when_disabled_and_lines_off_a_tty():
    out = io.StringIO()
    progress(10, "x", enabled=False, stream=out).update(10)
    assert out.getvalue() == ""
    assert isinstance(progress(10, "x", stream=out), SummaryLines)


def test_a_file_named_like_a_published_checkpoint_is_refused_by_its_hash(tmp_path: Path):
    from dt_circuits.dt.checkpoint import load_checkpoint

    fake = tmp_path / "ReproduceOriginalPostShort.pt"
    fake.write_bytes(b"not the published file")
    with pytest.raises(CheckpointError, match="sha256") as err:
        load_checkpoint(fake)
    assert "models/MiniGrid-Dynamic-Obstacles-8x8-v0/ReproduceOriginalPostShort.pt" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.reference
def test_the_published_reference_passes_its_hash(reference_path: Path):
    from dt_circuits.dt.references import verify_published

    known = verify_published(reference_path)
    assert known is not None and known.local_name == reference_path.name


def test_init_scaffolds_and_never_overwrites(tmp_path: Path, capsys):
    from dt_circuits.claims.suite.discovery import discover
    from dt_circuits.cli import main

    assert main(["init", str(tmp_path / "repo")]) == 0
    (claim,) = discover(tmp_path / "repo" / "claims")
    assert claim.id == "walls-avoided-high-rtg"
    assert main(["init", str(tmp_path / "repo")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda c: c.OnFamily("obstacle-infront", 0.9), "unknown state family 'obstacle-infront'; valid: wall-"),
        (lambda c: c.Behaviour(c.OnFamily("wall-in-front", 0.9), "p_foward"), "unknown action in metric 'p_foward'"),
        (lambda c: c.Behaviour(c.OnFamily("wall-in-front", 0.9), "forward-forward"), "unknown metric"),
        (lambda c: c.Ablation(c.OnFamily("wall-in-front", 0.9), "obstacel_head"), "roles: obstacle_head"),
        (lambda c: c.Ablation(c.OnFamily("wall-in-front", 0.9), "goal_head", metric="attn_to_rtg:nope"), "nope"),
        (lambda c: c.Check("x", object(), at_most=1.0), "is not a measure"),
        (
            lambda c: c.Claim("x", "s", "src", (c.Check("x", c.Rollouts(0.9), at_least=0.5),), falsified_by=("vibes",)),
            "unknown falsification control 'vibes'",
        ),
        (lambda c: c.Claim("x", "s", "src", (), kind="behaviour"), "has no checks"),
    ],
)
def test_a_typo_in_a_claim_fails_where_it_is_written_naming_the_valid_names(make, fragment):
    import dt_circuits.claim as c
    from dt_circuits.core.errors import ConfigError

    with pytest.raises(ConfigError, match=None) as err:
        make(c)
    assert fragment in str(err.value) and len(str(err.value).splitlines()) == 1


def test_valid_names_pass_and_claims_default_their_falsifiers_by_kind():
    import dt_circuits.claim as c

    on = c.OnFamily("goal-from-top", -1.0)
    for metric in ("p_left", "forward-right", "attn_to_rtg", "attn_to_rtg:L0H1", "state_embed:forward-right"):
        c.Behaviour(on, metric)
    c.Ablation(on, ("L0H0", "mlp"))
    check = c.Check("x", c.Ablation(on, "goal_head"), at_least=0.25)
    assert c.Claim("x", "s", "src", (check,), kind="head").falsified_by == ("swapped-heads", "random-init")
    assert c.Claim("x", "s", "src", (check,), kind="mlp").falsified_by == ("role-on-a-head", "random-init")
    assert isinstance(check.measure, c.PerStateMeasure)
    assert not isinstance(c.Rollouts(0.9), c.PerStateMeasure) and isinstance(c.Rollouts(0.9), c.Measure)


@pytest.mark.xdist_group("house-grouping-check")
def test_xdist_groups_are_in_effect_under_loadgroup(request):
    """The test command (`-n 2 --dist loadgroup`) keeps a module's expensive fixtures and a checkpoint's claims on
    one worker only if xdist honours ``xdist_group`` marks. pytest 9.2 with pytest-xdist 3.8 ignores every one of
    them without a word (pytest-dev/pytest-xdist#1386): measured on an AMD EPYC, the determinism and EnvPool
    lockstep fixtures were then computed on both workers. xdist marks a grouped test's node id with its group."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not running under `pytest -n N --dist loadgroup`")
    assert request.node.nodeid.endswith("@house-grouping-check"), (
        f"xdist_group marks are ignored (node id {request.node.nodeid!r}): pin pytest < 9.2 (constraints.txt)"
    )
    # and every group reaches the scheduler as its name: xdist reads the group only from an `@` after the node id's
    # last `]`, so a group named `claims[raw-index]` was silently one group per module (the claims plugin's were)
    from xdist.scheduler.loadgroup import LoadGroupScheduling

    from dt_circuits.claims.plugin import claims_group
    from dt_circuits.core.paths import (
        checkpoint_label,
        memory_reference_checkpoint,
        own_checkpoints,
        reference_checkpoint,
    )

    scope = LoadGroupScheduling._split_scope.__get__(object.__new__(LoadGroupScheduling))
    grouped = {item.nodeid: mark.args[0] for item in request.session.items for mark in item.iter_markers("xdist_group")}
    for path in (*own_checkpoints(), reference_checkpoint(), memory_reference_checkpoint()):  # collected or not
        label, group = checkpoint_label(path), claims_group(path)
        grouped[f"claims/a_claim.py::a-claim[{label}]@{group}"] = group
    split = {nodeid: (group, scope(nodeid)) for nodeid, group in grouped.items() if scope(nodeid) != group}
    assert not split, split


def test_the_plugin_evaluates_claims_with_the_clis_threads_and_gives_the_users_back(pytester, monkeypatch):
    """A claim's numbers can depend on the thread count (a fit's bytes do), and ``--record`` is the CLI's, one
    thread: the plugin evaluates each claim under the same policy, and a user's own tests keep their threads."""
    from dt_circuits.core.paths import CHECKPOINTS_DIR
    from dt_circuits.core.threads import NATIVE_POOL_VARS

    for var in (*NATIVE_POOL_VARS, "DT_CIRCUITS_THREADS"):  # the user's process: nothing sized
        monkeypatch.delenv(var, raising=False)
    pytester.mkdir("claims")
    (pytester.path / "claims" / "threads_seen.py").write_text(
        textwrap.dedent(
            """
            from dt_circuits.claim import Check, Claim, Weights

            def threads(subject):
                import torch
                return float(torch.get_num_threads())

            CLAIM = Claim(
                id="threads-seen", statement="one torch thread while a claim is evaluated", source="house",
                kind="embedding", checks=(Check("threads", Weights(threads, "torch threads"), at_most=1.0),),
            )
            """
        )
    )
    # the user's own setting, two threads, and their test that runs after the claim
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    pytester.makepyfile(test_zz_after="import torch\n\ndef test_mine():\n    assert torch.get_num_threads() == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--checkpoint={CHECKPOINTS_DIR / 'raw-index'}")
    result.assert_outcomes(passed=2)
