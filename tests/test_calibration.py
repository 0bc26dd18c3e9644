"""Calibration (Fig. 5) and Table-1 evaluation: worker-count independence, outputs, CLI, reference checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dt_circuits.analysis.figures import calibration_figure, save_png
from dt_circuits.cli import main
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.checkpoint import load_checkpoint, read_manifest, save_checkpoint
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.calibration import (
    Calibration,
    calibrate,
    table1,
    update_manifest,
)
from dt_circuits.evaluation.pool import evaluate_rtgs
from dt_circuits.evaluation.rollout import RolloutResult, rollout

SPEC = EnvSpec(max_steps=25)


@pytest.fixture(scope="module")
def model() -> DecisionTransformer:
    m = DecisionTransformer(DTConfig(d_model=32, d_head=16, d_mlp=64, max_timestep=SPEC.max_steps))
    m.init_weights(7)
    m.W_rtg.data *= 50  # make the RTG matter so different RTGs give different behaviour
    return m


def test_results_do_not_depend_on_worker_count(model):
    one = evaluate_rtgs(model, (-1.0, 0.5), n_episodes=120, seed=3, env=SPEC, workers=1, progress=False)
    two = evaluate_rtgs(model, (-1.0, 0.5), n_episodes=120, seed=3, env=SPEC, workers=2, progress=False)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.lengths, b.lengths)
        np.testing.assert_array_equal(a.outcomes, b.outcomes)


def test_chunks_are_the_same_episodes_as_one_rollout(model):
    (res,) = evaluate_rtgs(model, (0.3,), n_episodes=70, seed=5, env=SPEC, workers=1, progress=False)
    whole = rollout(model, rtg=0.3, n_episodes=70, seed=5, env=SPEC)
    np.testing.assert_array_equal(res.outcomes, whole.outcomes)
    np.testing.assert_array_equal(res.lengths, whole.lengths)


def test_calibration_json_and_plot(model, tmp_path):
    cal = calibrate(model, (-1.0, 0.0, 1.0), n_episodes=20, seed=0, env=SPEC, workers=1, progress=False)
    data = cal.to_json()
    assert data["episodes_per_rtg"] == 20 and data["env"]["max_steps"] == SPEC.max_steps
    for row in data["rows"]:
        assert row["episodes"] == 20
        assert abs(row["goal_rate"] + row["collision_rate"] + row["timeout_rate"] - 1) < 1e-9
        lo, hi = row["band_95"]
        assert -1 <= lo <= row["mean_reward"] <= hi <= 1
        assert 1 <= row["mean_length"] <= SPEC.max_steps
    json.dumps(data)
    png = save_png(calibration_figure(cal), tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = cal.summary()
    assert len(summary["curve"]) == 3
    # the error is the mean distance of each RTG's mean reward from the RTG itself, computed independently here
    by_hand = np.mean([abs(np.mean(r.rewards) - r.rtg) for r in cal.results])
    assert summary["mean_abs_calibration_error"] == pytest.approx(by_hand, abs=1e-4)


def test_table1_checks_use_the_thresholds():
    def res(rtg: float, outcomes: list[str]) -> RolloutResult:
        n = len(outcomes)
        rewards = np.array([{"goal": 0.9, "collision": -1.0, "timeout": 0.0}[o] for o in outcomes])
        return RolloutResult(rtg, rewards, np.ones(n, int), np.array(outcomes), True, 0)

    good = table1(
        [
            res(-1.0, ["collision"] * 19 + ["goal"]),
            res(0.0, ["timeout"] * 10 + ["collision"] * 10),
            res(0.9, ["goal"] * 18 + ["collision"] * 2),
        ]
    )
    assert good["passed"] and all(good["checks"].values())
    bad = table1([res(-1.0, ["collision"] * 18 + ["goal"] * 2), res(0.0, ["timeout"] * 9 + ["goal"] * 11),
                  res(0.9, ["goal"] * 17 + ["collision"] * 3)])  # fmt: skip
    assert not bad["passed"] and not any(bad["checks"].values())


def test_bad_arguments(model):
    with pytest.raises(ConfigError):
        evaluate_rtgs(model, (0.0,), n_episodes=0, env=SPEC)
    with pytest.raises(ConfigError):
        evaluate_rtgs(model, (), n_episodes=3, env=SPEC)
    with pytest.raises(ConfigError, match="time embedding"):
        evaluate_rtgs(model, (0.0,), n_episodes=3, env=EnvSpec(max_steps=100))


def test_cli_calibrate_updates_our_manifest(model, tmp_path, capsys):
    ckpt = save_checkpoint(model, tmp_path / "m", env=SPEC, name="m")
    plot, out = tmp_path / "p.png", tmp_path / "c.json"
    argv = ["calibrate", "--checkpoint", str(ckpt), "--episodes", "10", "--rtgs", "-1", "0", "0.9", "--workers", "1",
            "--json", str(out), "--plot", str(plot), "--record", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    manifest = read_manifest(ckpt)
    assert manifest["calibration"]["episodes_per_rtg"] == 10
    assert manifest["evaluation"]["episodes_per_rtg"] == 10
    assert (ckpt / "calibration.png").exists() and plot.exists()
    assert json.loads(out.read_text()) == json.loads((ckpt / "calibration.json").read_text())
    load_checkpoint(ckpt)  # weights sha256 in the manifest still matches
    assert "rtg" in capsys.readouterr().out


def test_update_manifest_keeps_the_checkpoint_loadable(model, tmp_path):
    ckpt = save_checkpoint(model, tmp_path / "m", env=SPEC, name="m")
    update_manifest(ckpt, note={"x": 1})
    assert read_manifest(ckpt)["note"] == {"x": 1}
    assert load_checkpoint(ckpt).checkpoint_info.manifest["note"] == {"x": 1}


@pytest.mark.reference
def test_cli_calibrate_runs_on_the_dti_reference(reference_path, tmp_path, capsys):
    out = tmp_path / "dti.json"
    argv = ["calibrate", "--checkpoint", str(reference_path), "--episodes", "8", "--rtgs", "-1", "0.9",
            "--workers", "1", "--json", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["env"]["max_steps"] == 1000
    assert [r["rtg"] for r in data["rows"]] == [-1.0, 0.9]
    assert data["rows"][0]["collision_rate"] >= 0.75  # the reference collides at RTG -1
    capsys.readouterr()


def test_calibration_dataclass_roundtrips(model):
    cal = Calibration(evaluate_rtgs(model, (0.0,), n_episodes=5, env=SPEC, workers=1, progress=False), SPEC)
    assert cal.rows()[0]["rtg"] == 0.0
