"""DT training: DTI's sampling and labels, determinism to the byte, and a retrain from the recorded command."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import torch

from dt_circuits.cli import main
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import sha256_file
from dt_circuits.dt.checkpoint import load_checkpoint, read_manifest
from dt_circuits.env.spec import EnvSpec
from dt_circuits.training.config import TrainConfig
from dt_circuits.training.train import StepSampler, train, weights_digest
from dt_circuits.trajectories.dataset import TrajectoryDataset, collect_scripted
from dt_circuits.trajectories.mix import DEFAULT_MIX

SPEC = EnvSpec(max_steps=40)
TINY = dict(d_model=32, d_head=16, d_mlp=64, steps=40, log_every=10, eval_episodes=4, threads=1)


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return collect_scripted(DEFAULT_MIX, n_episodes=30, seed=0, env=SPEC, progress=False)


@pytest.fixture(scope="module")
def data_file(data, tmp_path_factory):
    return data.save(tmp_path_factory.mktemp("data") / "tiny.npz")


def test_sampler_weights_steps_by_trajectory_length_and_oversamples_ends(data):
    gen = torch.Generator().manual_seed(0)
    ends = set((data.starts + data.lengths - 1).tolist())
    s = StepSampler(data, prob_go_from_end=1.0)
    idx_ts = s.sample(4000, gen)[2]
    # every sample is a final step: timestep == length - 1 of its episode
    last_ts = {int(data.lengths[i] - 1) for i in range(data.n_episodes)}
    assert set(idx_ts.tolist()) <= last_ts
    s = StepSampler(data, prob_go_from_end=0.0)
    obs, rtg, ts, actions = s.sample(20000, gen)
    # uniform over steps == trajectory chosen in proportion to its length
    share_long = float((rtg == 0).float().mean())  # timeouts are the longest episodes
    expected = float(data.lengths[data.rewards == 0].sum() / data.n_steps)
    assert abs(share_long - expected) < 0.02
    assert obs.dtype == torch.uint8 and actions.dtype == torch.long
    assert len(ends) == data.n_episodes


def test_rtg_labels_are_final_rewards(data):
    s = StepSampler(data, 0.1)
    np.testing.assert_array_equal(s.rtg.numpy(), np.repeat(data.rewards, data.lengths))


def test_training_is_deterministic_to_the_byte(data):
    a = train(TrainConfig(**TINY), data, progress=False)
    b = train(TrainConfig(**TINY), data, progress=False)
    assert weights_digest(a.model) == weights_digest(b.model)
    assert a.curve["loss"] == b.curve["loss"]
    c = train(TrainConfig(**{**TINY, "seed": 1}), data, progress=False)
    assert weights_digest(a.model) != weights_digest(c.model)


def test_fused_adamw_is_deterministic_and_a_different_recipe(data):
    """The recipe's fused AdamW (the default): the same bytes twice, other bytes than the unfused
    (foreach=False) loop of the previous recipe."""
    fused = TrainConfig(**TINY, fused_adamw=True)
    a, b = (weights_digest(train(fused, data, progress=False).model) for _ in range(2))
    assert a == b
    assert TrainConfig().fused_adamw
    assert a != weights_digest(train(TrainConfig(**TINY, fused_adamw=False), data, progress=False).model)


def test_evaluation_does_not_touch_the_weights(data):
    a = train(TrainConfig(**{**TINY, "eval_every": 0}), data, progress=False)
    b = train(TrainConfig(**{**TINY, "eval_every": 10, "eval_episodes": 3}), data, progress=False)
    assert weights_digest(a.model) == weights_digest(b.model)
    assert len(b.curve["eval"]) == 4


def test_loss_goes_down(data):
    r = train(TrainConfig(**{**TINY, "steps": 150, "lr": 3e-3}), data, progress=False)
    assert r.curve["loss"][-1] < r.curve["loss"][0]


def test_one_hot_twin_trains(data):
    r = train(TrainConfig(**{**TINY, "obs_encoding": "one_hot"}), data, progress=False)
    assert r.model.cfg.obs_encoding == "one_hot"
    assert r.model.cfg.max_timestep == SPEC.max_steps


def test_lr_schedule():
    cfg = TrainConfig(steps=1000, warmup_steps=100, lr=1e-3)
    assert cfg.lr_at(50) == pytest.approx(5e-4)
    assert cfg.lr_at(100) == pytest.approx(1e-3)
    assert cfg.lr_at(550) == pytest.approx(5e-4)
    assert cfg.lr_at(1000) == pytest.approx(0.0, abs=1e-12)
    assert TrainConfig(lr_schedule="constant").lr_at(7) == TrainConfig().lr


def test_config_validation():
    with pytest.raises(ConfigError):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError):
        TrainConfig(prob_go_from_end=1.5)
    with pytest.raises(ConfigError):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_dict({"nope": 1})
    cfg = TrainConfig(eval_rtgs=(0.5,))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_cli_train_writes_provenance_and_the_recorded_command_reproduces_the_bytes(data_file, tmp_path, capsys):
    out = tmp_path / "ckpt"
    argv = ["train", "--data", str(data_file), "--out", str(out), "--steps", "30", "--threads", "1",
            "--d-model", "32", "--d-head", "16", "--d-mlp", "64", "--eval-every", "0", "--eval-episodes", "2",
            "--table1-episodes", "4", "--workers", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    manifest = read_manifest(out)
    tr = manifest["training"]
    assert tr["data"]["sha256"] == sha256_file(data_file)
    assert tr["threads"] == 1 and tr["seed"] == 0 and tr["wall_seconds"] >= 0
    assert tr["config"]["prob_go_from_end"] == 0.1
    assert manifest["env"]["max_steps"] == SPEC.max_steps
    assert set(manifest["evaluation"]["checks"]) == {
        "rtg_0.9_goal_rate>=0.90",
        "rtg_-1_no_goal_rate>=0.95",
        "rtg_0_timeout_rate>=0.50",
    }
    for name in ("loss_curve.json", "loss_curve.png", "model.safetensors"):
        assert (out / name).exists()
    assert json.loads((out / "loss_curve.json").read_text())["step"][-1] == 30

    # retrain with exactly the recorded command, into another directory
    cmd = shlex.split(tr["command"])
    assert cmd[:2] == ["dt-circuits", "train"]
    again = tmp_path / "again"
    cmd[cmd.index("--out") + 1] = str(again)
    assert main([*cmd[1:], "--quiet", "--workers", "1"]) == 0
    assert sha256_file(again / "model.safetensors") == sha256_file(out / "model.safetensors")
    model = load_checkpoint(again)
    assert model.cfg.d_model == 32
    capsys.readouterr()


def test_cli_collect_then_help(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["collect", "--source", "scripted", "--episodes", "6", "--max-steps", "30", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    assert TrajectoryDataset.load(out).n_episodes == 6
    merged = tmp_path / "m.npz"
    assert main(["collect", "--source", "merge", "--inputs", str(out), str(out), "--out", str(merged)]) == 0
    assert TrajectoryDataset.load(merged).n_episodes == 12
    assert TrajectoryDataset.load(merged).meta["source"] == "merge"
    assert main(["collect", "--source", "dti", "--inputs", str(out), "--out", str(tmp_path / "x.npz")]) == 2
    assert "unpickling runs code" in capsys.readouterr().err
    for command in ("collect", "train", "calibrate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--" in capsys.readouterr().out


def _train_parser():
    from dt_circuits.cli import build_parser

    return build_parser(["train"])


def test_train_flags_come_from_train_config_and_round_trip():
    """Every TrainConfig field is a flag; the recorded command parses back to the same config (one source)."""
    import shlex
    from dataclasses import fields

    from dt_circuits.training.config import command_line, config_from_args, flag_of

    cfg = TrainConfig(
        obs_encoding="one_hot", steps=123, betas=(0.8, 0.95), eval_rtgs=(0.5, -1.0), lr=3e-4, fused_adamw=True,
        frozen_head="L0H1", exclude_outcome="timeout", iit_component="mlp", iit_weight=0.5, iit_rtgs=(0.9,),
    )  # fmt: skip
    line = command_line(["dt-circuits", "train", "--data", "d.npz", "--out", "o"], cfg)
    for f in fields(TrainConfig):
        assert flag_of(f.name) in line
    args = _train_parser().parse_args(shlex.split(line)[1:])
    assert config_from_args(args) == cfg
    # the two deliberate breaks and IIT's knobs are spelled out only when used; an ordinary run's command is as
    # before
    plain = command_line(["dt-circuits", "train", "--data", "d.npz", "--out", "o"], TrainConfig())
    assert "--frozen-head" not in plain and "--exclude-outcome" not in plain and "--iit" not in plain
    assert config_from_args(_train_parser().parse_args(shlex.split(plain)[1:])) == TrainConfig()


def test_a_frozen_head_stays_at_init_and_the_rest_trains(data):
    from dt_circuits.dt.model import DecisionTransformer

    result = train(TrainConfig(**{**TINY, "frozen_head": "L0H1"}), data, progress=False)
    init = DecisionTransformer(TrainConfig(**TINY).model_config(data.env))
    init.init_weights(0)
    trained, start = result.model.blocks[0].attn, init.blocks[0].attn
    for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V"):
        assert torch.equal(getattr(trained, name)[1], getattr(start, name)[1]), name
        assert not torch.equal(getattr(trained, name)[0], getattr(start, name)[0]), name
    with pytest.raises(ConfigError, match="L0H1"):
        TrainConfig(frozen_head="head one")
    with pytest.raises(ConfigError, match="not a head"):
        TrainConfig(frozen_head="L0H2")


def test_excluding_an_outcome_samples_only_the_other_episodes(data):
    gen = torch.Generator().manual_seed(0)
    s = StepSampler(data, prob_go_from_end=0.5, exclude_outcome="collision")
    _, rtg, _, _ = s.sample(5000, gen)
    assert float(rtg.min()) >= 0  # a collision is the only outcome with reward -1
    assert (data.rewards < 0).any() and (data.rewards >= 0).any()
    with pytest.raises(ConfigError, match="exclude_outcome"):
        TrainConfig(exclude_outcome="ball")
    # without exclusion the sampler draws exactly as it always did (the recipe's bytes do not move)
    a = StepSampler(data, 0.1).sample(64, torch.Generator().manual_seed(3))
    b = StepSampler(data, 0.1, "").sample(64, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ["raw-index", "one-hot"])
def test_committed_training_commands_reproduce_their_recorded_configs(name):
    import shlex

    from dt_circuits.core.paths import CHECKPOINTS_DIR
    from dt_circuits.training.config import config_from_args

    training = read_manifest(CHECKPOINTS_DIR / name)["training"]
    args = _train_parser().parse_args(shlex.split(training["command"])[1:])
    assert config_from_args(args) == TrainConfig.from_dict(training["config"])
