"""Checkpoint I/O: our format round-trips bit-exactly; every bad file ends in one line naming the problem."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dt_circuits.core.errors import CheckpointError
from dt_circuits.dt.checkpoint import import_dti, load_checkpoint, save_checkpoint
from dt_circuits.env.spec import EnvSpec
from tests.helpers import batch, random_model


@pytest.fixture
def own_ckpt(tmp_path: Path) -> Path:
    return save_checkpoint(random_model(3), tmp_path / "ckpt", env=EnvSpec(max_steps=300), name="test")


def test_round_trip_is_exact(own_ckpt: Path):
    model = random_model(3)
    loaded = load_checkpoint(own_ckpt)
    obs, rtg, t = batch(16)
    assert torch.equal(model(obs, rtg, t), loaded(obs, rtg, t))
    info = loaded.checkpoint_info
    assert info.kind == "dt-circuits" and info.env.max_steps == 300 and info.name == "test"
    manifest = json.loads((own_ckpt / "manifest.json").read_text())
    assert manifest["model_config"]["obs_encoding"] == "index" and len(manifest["weights_sha256"]) == 64


def test_saving_twice_gives_identical_bytes(tmp_path: Path):
    a = save_checkpoint(random_model(3), tmp_path / "a", env=EnvSpec(), name="x")
    b = save_checkpoint(random_model(3), tmp_path / "b", env=EnvSpec(), name="x")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_rewrite_keeps_other_files_and_leaves_no_temp(own_ckpt: Path):
    (own_ckpt / "calibration.json").write_text("{}")
    save_checkpoint(random_model(4), own_ckpt, env=EnvSpec(), name="test")
    assert (own_ckpt / "calibration.json").exists()
    assert [p.name for p in own_ckpt.parent.iterdir()] == ["ckpt"]


def test_loaded_model_is_frozen_in_eval_mode(own_ckpt: Path):
    model = load_checkpoint(own_ckpt)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


# -- bad input: one line naming the problem ----------------------------------------------------------------


def _dti_like(tmp_path: Path, mutate=None, configs=None) -> Path:
    """A small DTI-format file built from a random model (shape-compatible with the reference)."""
    m = random_model(5)
    sd = {
        "reward_embedding.0.weight": m.W_rtg.detach()[:, None].clone(),
        "state_embedding.weight": m.W_state.detach().T.clone(),
        "time_embedding.weight": m.W_time.detach().clone(),
        "transformer.pos_embed.W_pos": m.W_pos.detach().clone(),
        "action_predictor.weight": m.W_U.detach().T.clone(),
        "action_predictor.bias": m.b_U.detach().clone(),
    }
    for k, v in m.blocks[0].state_dict().items():
        if k.startswith(("attn.W", "attn.b", "mlp.")):
            sd[f"transformer.blocks.0.{k}"] = v.clone()
    if mutate:
        mutate(sd)
    data = {"model_state_dict": sd}
    data.update(configs if configs is not None else {"model_config": json.dumps({"n_ctx": 2, "layer_norm": False})})
    path = tmp_path / "dti.pt"
    torch.save(data, path)
    return path


def test_dti_import_tolerates_missing_config_keys(tmp_path: Path):
    path = _dti_like(tmp_path, configs={})
    model = import_dti(path)
    assert model.cfg.n_heads == 2 and model.cfg.obs_encoding == "index" and model.checkpoint_info.kind == "dti"
    obs, rtg, t = batch(4)
    torch.testing.assert_close(model(obs, rtg, t), random_model(5)(obs, rtg, t))


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _flip(sd, key, shape):
    sd[key] = torch.zeros(shape)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tp: tp / "nope.pt", "checkpoint not found"),
        (lambda tp: _truncate(_dti_like(tp)), "not a readable torch file"),
        (lambda tp: (tp / "notes.pt").write_text("hello") and tp / "notes.pt", "not a readable torch file"),
        (lambda tp: torch.save([1, 2], tp / "list.pt") or tp / "list.pt", "not a DTI checkpoint"),
        (
            lambda tp: _dti_like(tp, lambda sd: _flip(sd, "transformer.blocks.0.attn.W_Q", (2, 128, 32))),
            "transformer.blocks.0.attn.W_Q|blocks.0.attn.W_Q has shape",
        ),
        (lambda tp: _dti_like(tp, lambda sd: sd.pop("time_embedding.weight")), "missing tensor time_embedding"),
        (
            lambda tp: _dti_like(tp, lambda sd: sd["action_predictor.bias"].fill_(float("nan"))),
            "b_U holds NaN",
        ),
        (
            lambda tp: _dti_like(tp, configs={"model_config": json.dumps({"layer_norm": True})}),
            "layer_norm=True",
        ),
        (
            lambda tp: _dti_like(tp, configs={"model_config": json.dumps({"n_ctx": 5})}),
            "n_ctx=5",
        ),
        (
            lambda tp: _dti_like(tp, configs={"model_config": "{not json"}),
            "model_config is not valid JSON",
        ),
        (
            lambda tp: _dti_like(tp, configs={"environment_config": json.dumps({"env_id": "MiniGrid-Empty"})}),
            "env_id 'MiniGrid-Empty' is not supported",
        ),
        (
            lambda tp: _dti_like(tp, lambda sd: _flip(sd, "state_embedding.weight", (128, 100))),
            "state_embedding.weight has 100 inputs",
        ),
    ],
    ids=[
        "missing",
        "truncated",
        "text-file",
        "not-a-dict",
        "wrong-shape",
        "missing-tensor",
        "nan",
        "layer-norm",
        "long-context",
        "bad-json",
        "other-env",
        "bad-obs-size",
    ],
)
def test_bad_dti_files_raise_one_clear_line(tmp_path: Path, make, message):
    path = make(tmp_path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


class _Evil:
    """Unpickling this creates a file: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle"])
def test_pickle_that_needs_code_execution_is_refused_and_runs_nothing(tmp_path: Path, container: str):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"model_state_dict": _Evil(marker)}
    if container == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="code execution"):
        load_checkpoint(path)
    assert not marker.exists()


def test_own_checkpoint_corruption_is_named(own_ckpt: Path):
    weights = own_ckpt / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-10])
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_checkpoint(own_ckpt)
    manifest = json.loads((own_ckpt / "manifest.json").read_text())
    manifest.pop("weights_sha256")
    (own_ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not readable safetensors"):
        load_checkpoint(own_ckpt)
    weights.write_bytes(good)
    manifest["model_config"]["obs_encoding"] = "rgb"
    (own_ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="obs_encoding 'rgb'"):
        load_checkpoint(own_ckpt)
    (own_ckpt / "manifest.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(own_ckpt)
    (own_ckpt / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="manifest.json is missing"):
        load_checkpoint(own_ckpt)
    assert weights.read_bytes() == good  # a failed load modifies nothing


def test_cli_prints_one_line_and_exits_nonzero(tmp_path: Path):
    bad = _truncate(_dti_like(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "dt_circuits.cli", "evaluate", "--checkpoint", str(bad), "--episodes", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a readable torch file" in lines[0], proc.stderr
