"""Hostile inputs: every bad file, array, request or roles file ends in one package error line, runs no code,
and changes nothing on disk; every write is atomic.

A merge gate must not lie: a corrupt or crafted checkpoint must neither crash with a traceback nor load as
garbage, and a downloaded file must never run code. The fuzz tests use modest example counts (hypothesis is
derandomized under CI, see conftest.py), so this file runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors.torch import save_file

from dt_circuits import cli
from dt_circuits.claims.evaluation.subject import POST_ROLES, Subject, load_roles
from dt_circuits.core.errors import CheckpointError, ConfigError, DTCircuitsError, InvalidInputError, InvalidStateError
from dt_circuits.core.io import default_mode, write_bytes_atomic, write_json_atomic
from dt_circuits.dt.checkpoint import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    import_dti,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
)
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.scenarios import GridState, StateRenderer, front_kind, goal_in_front, in_front, validate_state
from dt_circuits.env.spec import CHANNEL_MAX, EnvSpec
from tests.helpers import batch, random_model

#: 40 examples per fuzz test keep this file fast; DT_CIRCUITS_FUZZ_EXAMPLES=2000 runs a deeper hunt locally.
FUZZ = settings(
    max_examples=int(os.environ.get("DT_CIRCUITS_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- shared builders --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A fresh folder per hypothesis example (function-scoped tmp_path cannot be used inside @given)."""
    path = Path(tempfile.mkdtemp(prefix="dt-hostile-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: a failed load must leave this identical."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text, f"not one line: {text!r}"
    return text


def dti_state_dict(model) -> dict[str, torch.Tensor]:
    """A model's weights under DTI's names and layouts (the inverse of the importer)."""
    sd = {
        "reward_embedding.0.weight": model.W_rtg.detach()[:, None].clone(),
        "state_embedding.weight": model.W_state.detach().T.clone(),
        "time_embedding.weight": model.W_time.detach().clone(),
        "transformer.pos_embed.W_pos": model.W_pos.detach().clone(),
        "action_predictor.weight": model.W_U.detach().T.clone(),
        "action_predictor.bias": model.b_U.detach().clone(),
    }
    for k, v in model.blocks[0].state_dict().items():
        if k.startswith(("attn.W", "attn.b", "mlp.")):
            sd[f"transformer.blocks.0.{k}"] = v.clone()
    return sd


def write_dti(path: Path, sd: dict[str, torch.Tensor], model_config: dict | None = None) -> Path:
    torch.save({"model_state_dict": sd, "model_config": json.dumps(model_config or {"n_ctx": 2})}, path)
    return path


class Files(dict):
    """File name -> bytes, with a short repr: hypothesis prints test arguments, and these are megabytes."""

    def __repr__(self) -> str:
        return f"<files {', '.join(f'{k} ({len(v)} bytes)' for k, v in self.items())}>"


class Blob(bytes):
    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


@pytest.fixture(scope="module")
def good_own(tmp_path_factory) -> Files:
    """The two files of a valid checkpoint of ours (index encoding, max_steps 300)."""
    d = save_checkpoint(random_model(3), tmp_path_factory.mktemp("own") / "ckpt", env=EnvSpec(max_steps=300), name="t")
    return Files({WEIGHTS_FILE: (d / WEIGHTS_FILE).read_bytes(), MANIFEST_FILE: (d / MANIFEST_FILE).read_bytes()})


@pytest.fixture(scope="module")
def good_dti(tmp_path_factory) -> Blob:
    """A valid DTI-format file built from a random model (shape-compatible with the reference)."""
    return Blob(write_dti(tmp_path_factory.mktemp("dti") / "dti.pt", dti_state_dict(random_model(5))).read_bytes())


def write_own(root: Path, files: dict[str, bytes]) -> Path:
    d = root / "ckpt"
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


def load_or_named_error(path: Path, loader: Callable = load_checkpoint):
    """Load, or raise nothing but CheckpointError with one line; either way leave the files untouched."""
    root = path if path.is_dir() else path.parent
    before = snapshot(root)
    try:
        model = loader(path)
    except CheckpointError as exc:
        one_line(exc)
        model = None
    assert snapshot(root) == before, "a load modified files on disk"
    return model


# -- no code execution from data -----------------------------------------------------------------------------------


class Evil:
    """Unpickling this opens (creates) ``marker``: if the file exists, code from the data ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evil_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model_state_dict": Evil(marker), "data": Evil(marker)}))
    return path


def _evil_torch_zip(path: Path, marker: Path) -> Path:
    torch.save({"model_state_dict": Evil(marker)}, path)
    return path


def _evil_own_weights(root: Path, marker: Path, good: dict[str, bytes]) -> Path:
    """Our checkpoint folder whose model.safetensors is a pickle (sha256 in the manifest updated to match)."""
    d = write_own(root, good)
    _evil_pickle(d / WEIGHTS_FILE, marker)
    manifest = json.loads(good[MANIFEST_FILE])
    manifest.pop("weights_sha256")
    (d / MANIFEST_FILE).write_text(json.dumps(manifest))
    return d


def _evil_own_manifest(root: Path, marker: Path, good: dict[str, bytes]) -> Path:
    d = write_own(root, good)
    _evil_pickle(d / MANIFEST_FILE, marker)
    return d


def _evil_npz(path: Path, marker: Path) -> Path:
    """A trajectory-shaped zip whose obs.npy is an object array: np.load would unpickle it if allowed to."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format": "dt-circuits-trajectories", "format_version": 1}))
        for name in ("obs", "actions", "lengths", "rewards", "sources", "env_seeds"):
            with zf.open(f"{name}.npy", "w") as f:
                np.save(f, np.array([Evil(marker)], dtype=object), allow_pickle=True)
    return path


def _trajectory_loaders() -> list:
    try:
        from dt_circuits.trajectories.dataset import TrajectoryDataset, load_dti_trajectories
    except ImportError:  # the trajectory module is optional for this test
        return []
    return [
        pytest.param(TrajectoryDataset.load, _evil_pickle, "bad trajectory file|not a", id="trajectories-pickle"),
        pytest.param(TrajectoryDataset.load, _evil_npz, "allow_pickle", id="trajectories-object-npy"),
        pytest.param(load_dti_trajectories, _evil_pickle, "unpickling runs code", id="dti-trajectories-no-opt-in"),
    ]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("loader", "make", "message"),
    [
        pytest.param(load_checkpoint, _evil_pickle, "code execution", id="load_checkpoint-pickle"),
        pytest.param(load_checkpoint, _evil_torch_zip, "code execution", id="load_checkpoint-torch-zip"),
        pytest.param(import_dti, _evil_pickle, "code execution", id="import_dti-pickle"),
        pytest.param(import_dti, _evil_torch_zip, "code execution", id="import_dti-torch-zip"),
        pytest.param(Subject.load, _evil_torch_zip, "code execution", id="Subject.load"),
        pytest.param(load_checkpoint, "own-weights", "not readable safetensors", id="own-weights-pickle"),
        pytest.param(load_checkpoint, "own-manifest", "not valid JSON", id="own-manifest-pickle"),
        pytest.param(read_manifest, "own-manifest", "not valid JSON", id="read_manifest-pickle"),
        pytest.param(load_roles, _evil_pickle, "not valid JSON", id="roles-file"),
        *_trajectory_loaders(),
    ],
)
def test_a_crafted_pickle_runs_no_code_through_any_loader(tmp_path: Path, good_own, loader, make, message):
    marker = tmp_path / "pwned"
    if make == "own-weights":
        path = _evil_own_weights(tmp_path, marker, good_own)
    elif make == "own-manifest":
        path = _evil_own_manifest(tmp_path, marker, good_own)
    else:
        path = make(tmp_path / "evil.pt", marker)
    before = snapshot(tmp_path)
    with pytest.raises(DTCircuitsError, match=message) as info:
        loader(path)
    one_line(info.value)
    assert not marker.exists(), "unpickling ran code from the file"
    assert snapshot(tmp_path) == before


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--checkpoint", "{evil}", "--episodes", "1"],
        ["claims", "--checkpoint", "{evil}", "--no-search", "--no-report", "--only", "rtg-embedding-forward"],
        ["flakecheck", "--checkpoint", "{evil}", "--runs", "2", "--only", "rtg-embedding-forward"],
        ["collect", "--source", "dti", "--inputs", "{evil}", "--out", "{out}"],
        ["collect", "--source", "merge", "--inputs", "{evil}", "--out", "{out}"],
        ["train", "--data", "{evil}", "--out", "{out}"],
    ],
    ids=["evaluate", "claims", "flakecheck", "collect-dti", "collect-merge", "train"],
)
def test_cli_commands_refuse_a_crafted_pickle_without_running_it(tmp_path: Path, capsys, argv):
    if argv[0] in ("collect", "train") and "collect" not in cli_commands():
        pytest.skip("the training pipeline commands are not present")
    marker = tmp_path / "pwned"
    evil = _evil_torch_zip(tmp_path / "evil.pt", marker)
    out = tmp_path / "out"
    rc = cli.main([a.format(evil=evil, out=out) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"dt-circuits {argv[0]}: error: "), err
    assert not marker.exists() and not out.exists()


def cli_commands() -> set[str]:
    import pkgutil

    from dt_circuits import commands

    return {m.name for m in pkgutil.iter_modules(commands.__path__)}


# -- fuzzed checkpoint files ---------------------------------------------------------------------------------------


def _mutate(data: bytes, cuts: list[int], flips: list[tuple[int, int]], truncate: bool) -> bytes:
    buf = bytearray(data)
    for pos, bit in flips:
        buf[pos % len(buf)] ^= 1 << bit
    if truncate and cuts:
        buf = buf[: cuts[0] % len(buf)]
    return bytes(buf)


def _positions(n: int) -> st.SearchStrategy[int]:
    """Anywhere in the file, biased to the headers at both ends where structure (not tensor data) lives."""
    return st.one_of(st.integers(0, n - 1), st.integers(0, min(n, 4096) - 1), st.integers(max(0, n - 2048), n - 1))


@st.composite
def damage(draw: st.DrawFn, n: int) -> tuple[list[int], list[tuple[int, int]], bool]:
    truncate = draw(st.booleans())
    cuts = [draw(_positions(n))] if truncate else []
    flips = draw(
        st.lists(
            st.tuples(_positions(n), st.integers(0, 7)),
            min_size=0 if truncate else 1,
            max_size=6,
            unique_by=lambda f: f[0],  # two flips of one bit would undo each other
        )
    )
    return cuts, flips, truncate


@FUZZ
@given(data=st.data(), target=st.sampled_from([WEIGHTS_FILE, MANIFEST_FILE]), keep_sha=st.booleans())
def test_truncated_or_bit_flipped_checkpoint_directory(good_own, data, target, keep_sha):
    files = dict(good_own)
    if not keep_sha:  # without the sha256 the safetensors parser itself meets the damaged bytes
        manifest = json.loads(files[MANIFEST_FILE])
        manifest.pop("weights_sha256")
        files[MANIFEST_FILE] = json.dumps(manifest).encode()
    files[target] = _mutate(files[target], *data.draw(damage(len(files[target]))))
    with scratch() as root:
        model = load_or_named_error(write_own(root, files))
        if model is not None and target == WEIGHTS_FILE and keep_sha:
            pytest.fail("weights that do not match their sha256 were loaded")
        if model is not None:
            assert all(torch.isfinite(p).all() for p in model.parameters())


@FUZZ
@given(data=st.data())
@pytest.mark.filterwarnings("ignore")
def test_truncated_or_bit_flipped_dti_file(good_dti, data):
    blob = _mutate(good_dti, *data.draw(damage(len(good_dti))))
    with scratch() as root:
        path = root / "dti.pt"
        path.write_bytes(blob)
        model = load_or_named_error(path)
        if model is not None:
            assert all(torch.isfinite(p).all() for p in model.parameters())


OWN_TENSORS = [
    "W_rtg", "W_state", "W_time", "W_pos", "W_U", "b_U", "blocks.0.attn.W_Q", "blocks.0.attn.b_O",
    "blocks.0.mlp.W_in", "blocks.0.mlp.b_out",
]  # fmt: skip


def _bad_tensor(t: torch.Tensor, how: str, index: int) -> torch.Tensor:
    t = t.clone().contiguous()
    flat = t.view(-1)
    if how in ("nan", "inf", "-inf"):
        flat[index % flat.numel()] = float(how)
        return t
    return {
        "drop-row": lambda: t[:-1] if t.shape[0] > 1 else t[:0],
        "extra-dim": lambda: t[None],
        "scalar": lambda: t.reshape(-1)[0].clone(),
        "flatten": lambda: t.reshape(-1) if t.ndim > 1 else t[None],
        "int": lambda: t.to(torch.int32),
        "bool": lambda: t > 0,
        "float64-overflow": lambda: t.to(torch.float64).fill_(1e300),
        "missing": lambda: None,
    }[how]()


BAD_TENSOR = st.sampled_from(
    ["nan", "inf", "-inf", "drop-row", "extra-dim", "scalar", "flatten", "int", "bool", "float64-overflow", "missing"]
)


@FUZZ
@given(name=st.sampled_from(OWN_TENSORS), how=BAD_TENSOR, index=st.integers(0, 10**6))
def test_wrong_shape_dtype_or_non_finite_tensor_in_our_format_is_named(good_own, name, how, index):
    model = random_model(3)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    bad = _bad_tensor(tensors[name], how, index)
    if bad is None:
        tensors.pop(name)
    else:
        tensors[name] = bad.contiguous()
    with scratch() as root:
        d = write_own(root, {MANIFEST_FILE: good_own[MANIFEST_FILE]})
        save_file(tensors, str(d / WEIGHTS_FILE))
        manifest = json.loads(good_own[MANIFEST_FILE])
        manifest.pop("weights_sha256")
        (d / MANIFEST_FILE).write_text(json.dumps(manifest))
        before = snapshot(d)
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
            load_checkpoint(d)
        one_line(info.value)
        assert snapshot(d) == before


DTI_TENSORS = [
    "reward_embedding.0.weight", "state_embedding.weight", "time_embedding.weight", "transformer.pos_embed.W_pos",
    "action_predictor.weight", "action_predictor.bias", "transformer.blocks.0.attn.W_Q",
    "transformer.blocks.0.attn.b_V", "transformer.blocks.0.mlp.W_out", "transformer.blocks.0.mlp.b_in",
]  # fmt: skip


@FUZZ
@given(name=st.sampled_from(DTI_TENSORS), how=BAD_TENSOR, index=st.integers(0, 10**6))
def test_wrong_shape_dtype_or_non_finite_tensor_in_a_dti_file_is_refused(name, how, index):
    sd = dti_state_dict(random_model(5))
    bad = _bad_tensor(sd[name], how, index)
    if bad is None:
        sd.pop(name)
    else:
        sd[name] = bad
    with scratch() as root:
        path = write_dti(root / "dti.pt", sd)
        # shapes that fit another model (one fewer time row) may load; everything else is refused by name
        model = load_or_named_error(path)
        if model is not None:
            assert how in ("drop-row", "flatten") and all(torch.isfinite(p).all() for p in model.parameters())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
MANIFEST_PATHS = [
    ("format",), ("format_version",), ("name",), ("model_config",), ("env",), ("training",), ("roles",),
    ("expectations",), ("weights_sha256",), ("model_config", "n_layers"), ("model_config", "n_heads"),
    ("model_config", "d_model"), ("model_config", "d_head"), ("model_config", "d_mlp"), ("model_config", "n_ctx"),
    ("model_config", "max_timestep"), ("model_config", "obs_encoding"), ("model_config", "n_actions"),
    ("model_config", "bogus"), ("env", "env_id"), ("env", "max_steps"), ("env", "size"), ("env", "view_size"),
    ("env", "n_obstacles"), ("env", "bogus"), ("roles", "obstacle_head"), ("roles", "bogus_role"),
    ("expectations", "rtg-embedding-forward"),
]  # fmt: skip
BIG_INTS = st.sampled_from([0, -1, 1, 2, 10**6, 10**9, 10**12, 10**18, 2**63, 10**30])


@FUZZ
@given(
    where=st.sampled_from(MANIFEST_PATHS),
    value=st.one_of(JSON, BIG_INTS, st.sampled_from(["L0H7", "mlp3", "head 1", "index", "one_hot"])),
    delete=st.booleans(),
)
def test_manifest_with_missing_or_bogus_fields_is_named(good_own, where, value, delete):
    manifest = json.loads(good_own[MANIFEST_FILE])
    node = manifest
    for key in where[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return
    if delete:
        node.pop(where[-1], None)
    else:
        node[where[-1]] = value
    with scratch() as root:
        d = write_own(root, {WEIGHTS_FILE: good_own[WEIGHTS_FILE], MANIFEST_FILE: json.dumps(manifest).encode()})
        model = load_or_named_error(d)
        if model is None:
            return
        # a manifest that loads must also be usable: roles bound or refused by name, expectations readable
        try:
            subject = Subject.from_model(model)
        except ConfigError as exc:
            one_line(exc)
            return
        assert subject.expected("rtg-embedding-forward") in ("holds", "fails")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_timestep": 10**12, "d_mlp": 10**9}, "has shape"),  # would need terabytes
        ({"n_layers": 10**6}, "n_layers=1000000 but the file holds 1 block"),  # would build a million blocks
        ({"n_heads": 10**18}, "has shape"),  # past int64 element counts
        ({"max_timestep": 100}, "needs more timesteps than the time embedding has"),  # env max_steps 300
    ],
)
def test_a_config_claiming_a_huge_or_inconsistent_model_is_refused_before_allocating(
    good_own, tmp_path, config, message
):
    manifest = json.loads(good_own[MANIFEST_FILE])
    manifest["model_config"].update(config)
    d = write_own(tmp_path, {WEIGHTS_FILE: good_own[WEIGHTS_FILE], MANIFEST_FILE: json.dumps(manifest).encode()})
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(d)


def test_a_dti_config_claiming_a_huge_model_is_refused_before_allocating(tmp_path):
    sd = dti_state_dict(random_model(5))
    with pytest.raises(CheckpointError, match="has shape"):
        import_dti(write_dti(tmp_path / "big.pt", sd, {"d_mlp": 10**9, "n_heads": 2}))
    with pytest.raises(CheckpointError, match="missing tensor transformer.blocks.1"):
        import_dti(write_dti(tmp_path / "deep.pt", sd, {"n_layers": 10**6}))
    with pytest.raises(CheckpointError, match="unsupported DTI config"):
        import_dti(write_dti(tmp_path / "inf.pt", sd, {"n_heads": float("inf")}))


@pytest.mark.parametrize(
    "cfg",
    [
        DTConfig(),
        DTConfig(obs_encoding="one_hot"),
        DTConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, d_mlp=16),
        DTConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, d_mlp=16, n_ctx=26, normalization="LN", mlp_type="gated"),
    ],
    ids=["index", "one-hot", "two-layers", "memory-dt"],
)
def test_param_shapes_match_the_real_model(cfg):
    """Loaders check files against DTConfig.param_shapes: it must be exactly the model's state_dict."""
    assert cfg.param_shapes() == {k: tuple(v.shape) for k, v in DecisionTransformer(cfg).state_dict().items()}


def test_unreadable_paths_are_named(good_own, tmp_path):
    d = write_own(tmp_path, {MANIFEST_FILE: good_own[MANIFEST_FILE]})
    (d / WEIGHTS_FILE).mkdir()
    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(d)
    (d / WEIGHTS_FILE).rmdir()
    (d / MANIFEST_FILE).unlink()
    (d / MANIFEST_FILE).mkdir()
    with pytest.raises(CheckpointError, match="is not a file"):
        load_checkpoint(d)
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_roles(tmp_path / "deep.json")
    with pytest.raises(ConfigError, match="not a file"):
        load_roles(tmp_path)


# -- model inputs ------------------------------------------------------------------------------------------------------

MODEL = random_model(1)
DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64, np.float16, np.float32,
          np.float64, np.bool_, np.complex64]  # fmt: skip


@st.composite
def observations(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(
        st.one_of(
            st.tuples(st.integers(0, 3), st.just(7), st.just(7), st.just(3)),
            hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=8),
        )
    )
    if draw(st.booleans()) and len(shape) == 4 and shape[1:] == (7, 7, 3):  # mostly in range, one cell perhaps not
        arr = np.zeros(shape, dtype=dtype)
        if arr.size and draw(st.booleans()):
            value = np.asarray(draw(st.sampled_from([-1, 11, 6, 255]))).astype(dtype)  # wraps in unsigned dtypes
            arr.reshape(-1)[draw(st.integers(0, arr.size - 1))] = value
        return arr
    return draw(hnp.arrays(dtype, shape))


def _valid_obs(obs: np.ndarray) -> bool:
    if obs.ndim != 4 or obs.shape[1:] != (7, 7, 3):
        return False
    if not np.issubdtype(obs.dtype, np.integer):
        return False
    return bool(obs.size == 0 or ((obs >= 0).all() and (obs <= np.array(CHANNEL_MAX)).all()))


@FUZZ
@given(obs=observations())
def test_observations_of_wrong_shape_dtype_or_range_are_named(obs):
    if _valid_obs(obs):
        logits = MODEL(obs, 0.5, 3)
        assert logits.shape == (obs.shape[0], 3) and torch.isfinite(logits).all()
        return
    with pytest.raises(InvalidInputError, match="obs") as info:
        MODEL(obs, 0.5, 3)
    one_line(info.value)


@FUZZ
@given(rtg=st.one_of(st.floats(), st.lists(st.floats(width=64), min_size=1, max_size=4)))
def test_rtg_nan_inf_or_overflowing_float32_is_named(rtg):
    obs, _, _ = batch(4)
    values = np.atleast_1d(np.asarray(rtg, dtype=np.float64))
    with np.errstate(over="ignore"):
        finite = np.isfinite(values.astype(np.float32)).all()
    if finite and values.size in (1, 4):
        assert MODEL(obs, rtg, 3).shape == (4, 3)
        return
    with pytest.raises(InvalidInputError, match="rtg") as info:
        MODEL(obs, rtg, 3)
    one_line(info.value)


@FUZZ
@given(t=st.one_of(st.integers(-(2**70), 2**70), st.integers(-5, 1010), st.floats(), st.just(2**64 - 1)))
def test_timestep_beyond_the_time_embedding_is_named(t):
    obs, rtg, _ = batch(2)
    whole = isinstance(t, int) or (np.isfinite(t) and float(t).is_integer())
    if whole and 0 <= t <= MODEL.cfg.max_timestep:
        assert MODEL(obs, rtg, t).shape == (2, 3)
        return
    with pytest.raises(InvalidInputError, match="timestep") as info:
        MODEL(obs, rtg, np.uint64(t) if t == 2**64 - 1 else t)
    one_line(info.value)


# -- scenario requests -------------------------------------------------------------------------------------------------

ANY = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3))
COORD = st.one_of(st.integers(-2, 9), ANY)
CELL = st.one_of(
    st.tuples(COORD, COORD), st.tuples(st.integers(-1, 8), st.integers(-1, 8)), st.lists(COORD, max_size=3)
)
RENDERER = StateRenderer()


@FUZZ
@given(
    pos=CELL,
    direction=st.one_of(st.integers(-1, 5), ANY),
    obstacles=st.one_of(st.lists(CELL, max_size=6), ANY),
    goal=st.one_of(st.just((6, 6)), CELL),
)
def test_invalid_scenario_requests_are_named(pos, direction, obstacles, goal):
    state = GridState(pos, direction, obstacles, goal)
    try:
        validate_state(state)
    except InvalidStateError as exc:
        one_line(exc)
        with pytest.raises(InvalidStateError):
            RENDERER.render(state)
        return
    assert RENDERER.render(state).shape == (7, 7, 3)  # a valid request is a real env state
    assert front_kind(state) in ("wall", "obstacle", "goal", "empty")


@settings(max_examples=30, deadline=None)
@given(
    name=st.one_of(
        st.sampled_from(["lava-in-front", "goal-from-bottom", "in-front", "goal-from-", "", "wall-in-front"]),
        st.text(max_size=12),
    )
)
def test_unknown_family_names_are_named(name):
    subject = Subject.from_model(MODEL, name="random")
    try:
        fam = subject.family(name)
    except (ConfigError, InvalidStateError) as exc:
        one_line(exc)
        return
    assert len(fam) > 0 and fam.obs.shape == (len(fam), 7, 7, 3)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (lambda: in_front("wall", seed=-1), "seed"),
        (lambda: in_front(["wall"]), "unknown front kind"),
        (lambda: goal_in_front(["top"]), "unknown goal side"),
        (lambda: goal_in_front("top", n=0), "positive integer"),
        (lambda: goal_in_front("top", seed=1.5), "seed"),
        (lambda: RENDERER.render("state"), "GridState"),
        (lambda: Subject.from_model(MODEL, generation_seed=-1), "generation_seed"),
    ],
)
def test_invalid_family_arguments_are_named(request_, message):
    with pytest.raises(DTCircuitsError, match=message) as info:
        request_()
    one_line(info.value)


# -- roles files -------------------------------------------------------------------------------------------------------

COMPONENTS = st.one_of(
    st.sampled_from(
        [
            "L0H0",
            "L0H1",
            "mlp",
            "head 1",
            "L0H7",
            "L1H0",
            "mlp2",
            "L3 MLP",
            "blocks.0.hook_nope",
            "hook_state_embed",
            "",
            "attention",
        ]
    ),  # fmt: skip
    st.text(max_size=6),
    JSON,
)
ROLES = st.dictionaries(st.one_of(st.sampled_from([*POST_ROLES, "wall_head", ""]), st.text(max_size=6)), COMPONENTS)


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(str.encode),
        JSON.map(lambda v: json.dumps(v).encode()),
        ROLES.map(lambda v: json.dumps(v).encode()),
    )
)
def test_malformed_roles_files_are_named(content):
    with scratch() as root:
        path = root / "roles.json"
        path.write_bytes(content)
        try:
            subject = Subject.from_model(MODEL, roles_file=path)
        except ConfigError as exc:
            one_line(exc)
        else:
            assert all(subject.component(role) is not None for role in subject.roles)
        assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("roles", "fragments"),
    [
        ({"obstacle_head": "L0H7"}, ["obstacle_head", "L0H7", "unknown head 7", "roles file"]),
        ({"goal_mlp": "mlp2"}, ["goal_mlp", "mlp2", "unknown MLP layer 2"]),
        ({"goal_head": "L1H0"}, ["goal_head", "unknown layer 1"]),
        ({"wall_head": "L0H0"}, ["unknown role(s) wall_head"]),
        ({"goal_head": 1}, ["mapping role names to components"]),
        (["L0H1"], ["mapping role names to components"]),
    ],
)
def test_roles_file_errors_name_the_role_and_the_component(tmp_path, roles, fragments):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(roles))
    with pytest.raises(ConfigError) as info:
        Subject.from_model(MODEL, roles_file=path)
    for fragment in fragments:
        assert fragment in one_line(info.value)


# -- the CLI: non-zero exit, one line on stderr, no traceback ----------------------------------------------------------


def _cli_case(tmp_path: Path, good_own: dict[str, bytes], good_dti: bytes, case: str) -> list[str]:
    """Build the hostile input for ``case`` and return the command line that meets it."""
    claims = ["claims", "--no-search", "--no-report", "--only", "rtg-embedding-forward"]
    own = write_own(tmp_path, good_own)
    roles = tmp_path / "roles.json"
    if case == "truncated-own":
        (own / WEIGHTS_FILE).write_bytes(good_own[WEIGHTS_FILE][:100])
        return ["evaluate", "--checkpoint", str(own), "--episodes", "1"]
    if case == "manifest-not-json":
        (own / MANIFEST_FILE).write_bytes(good_own[MANIFEST_FILE][:-20])
        return ["evaluate", "--checkpoint", str(own), "--episodes", "1"]
    if case == "manifest-bogus-type":
        manifest = json.loads(good_own[MANIFEST_FILE])
        manifest["model_config"]["n_heads"] = "two"
        (own / MANIFEST_FILE).write_text(json.dumps(manifest))
        return [*claims, "--checkpoint", str(own)]
    if case == "dti-nan":
        sd = dti_state_dict(random_model(5))
        sd["action_predictor.bias"][0] = float("nan")
        return ["evaluate", "--checkpoint", str(write_dti(tmp_path / "nan.pt", sd)), "--episodes", "1"]
    if case == "dti-bit-flipped":
        blob = bytearray(good_dti)
        for i in range(0, 300, 7):
            blob[i] ^= 0xFF
        (tmp_path / "flipped.pt").write_bytes(bytes(blob))
        return ["evaluate", "--checkpoint", str(tmp_path / "flipped.pt"), "--episodes", "1"]
    contents = {
        "roles-not-json": b"{obstacle_head: L0H1",
        "roles-unknown-role": json.dumps({"wall_head": "L0H0"}).encode(),
        "roles-unknown-component": json.dumps({"obstacle_head": "L0H7"}).encode(),
        "roles-wrong-types": json.dumps({"obstacle_head": ["L0H1"]}).encode(),
    }
    if case in contents:
        roles.write_bytes(contents[case])
        return [*claims, "--checkpoint", str(own), "--roles", str(roles)]
    assert case == "roles-missing"
    return [*claims, "--checkpoint", str(own), "--roles", str(tmp_path / "nope.json")]


CLI_CASES = {
    "truncated-own": "does not match the sha256",
    "manifest-not-json": "not valid JSON",
    "manifest-bogus-type": "n_heads must be a positive integer",
    "dti-nan": "holds NaN",
    "dti-bit-flipped": "corrupt",
    "roles-not-json": "not valid JSON",
    "roles-unknown-role": "unknown role(s) wall_head",
    "roles-unknown-component": "unknown head 7",
    "roles-wrong-types": "mapping role names to components",
    "roles-missing": "roles file not found",
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_fails_with_one_line_and_exit_2(tmp_path, capsys, good_own, good_dti, case):
    argv = _cli_case(tmp_path, good_own, good_dti, case)
    before = snapshot(tmp_path)
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith(f"dt-circuits {argv[0]}: error: ") and CLI_CASES[case] in err[0], err
    assert snapshot(tmp_path) == before


def test_cli_process_prints_no_traceback(tmp_path, good_own, good_dti):
    """The same promise end to end, in a real process (the in-process tests above cover every case)."""
    import subprocess
    import sys

    argv = _cli_case(tmp_path, good_own, good_dti, "roles-unknown-component")
    proc = subprocess.run([sys.executable, "-m", "dt_circuits.cli", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "unknown head 7" in proc.stderr


# -- writes are atomic and keep permissions ----------------------------------------------------------------------------


class Boom(Exception):
    """Stands in for a crash (or Ctrl-C) halfway through a write."""


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_atomic_write_keeps_the_old_file_when_interrupted_and_sets_normal_permissions(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_json_atomic(target, {"v": 1})
    assert stat.S_IMODE(target.stat().st_mode) == default_mode()  # not mkstemp's 0o600
    os.chmod(target, 0o640)
    old = target.read_bytes()

    def crash(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Boom):
        write_bytes_atomic(target, b"half")
    monkeypatch.undo()
    assert target.read_bytes() == old and _leftovers(tmp_path, {"results.json"}) == []
    write_json_atomic(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 2} and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_save_checkpoint_interrupted_leaves_the_old_checkpoint_and_no_temp(tmp_path, monkeypatch):
    d = save_checkpoint(random_model(3), tmp_path / "ckpt", env=EnvSpec(), name="t")
    assert stat.S_IMODE(d.stat().st_mode) == default_mode(directory=True)  # not mkdtemp's 0o700
    assert stat.S_IMODE((d / WEIGHTS_FILE).stat().st_mode) == default_mode()  # not safetensors' 0o600
    before = snapshot(d)

    def crash(*args, **kwargs):
        raise Boom

    monkeypatch.setattr("dt_circuits.dt.checkpoint.save_file", crash)
    with pytest.raises(Boom):
        save_checkpoint(random_model(4), d, env=EnvSpec(), name="t")
    assert snapshot(d) == before and _leftovers(tmp_path, {"ckpt"}) == []


@pytest.fixture
def cheap_runs(tmp_path):
    """A saved random checkpoint, its Subject and a run of one weights-only claim (fast)."""
    from dt_circuits.claims.suite.discovery import discover
    from dt_circuits.claims.suite.run import run_suite

    d = save_checkpoint(random_model(3), tmp_path / "ckpt", env=EnvSpec(), name="t")
    subject = Subject.load(d)
    runs = run_suite(subject, [c for c in discover() if c.id == "rtg-embedding-forward"])
    return d, subject, runs


def test_record_expectations_is_atomic_and_keeps_the_checkpoint_loadable(cheap_runs, monkeypatch):
    from dt_circuits.claims.records.expectations import record_expectations

    d, subject, runs = cheap_runs
    before = snapshot(d)

    def crash(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Boom):
        record_expectations(subject, runs)
    monkeypatch.undo()
    assert snapshot(d) == before and _leftovers(d, {MANIFEST_FILE, WEIGHTS_FILE}) == []
    record_expectations(subject, runs)
    assert (d / WEIGHTS_FILE).read_bytes() == before[WEIGHTS_FILE]
    assert Subject.load(d).expected("rtg-embedding-forward") == runs[0].verdict.verdict


def test_report_files_are_written_atomically(cheap_runs, tmp_path, monkeypatch):
    from dt_circuits.claims.output.report import write_report
    from dt_circuits.claims.output.suite_output import suite_json

    _, subject, runs = cheap_runs
    out = tmp_path / "report"
    real_replace = os.replace
    written = []

    def record(src, dst):
        written.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", record)
    index = write_report(out, subject, runs, suite_json(subject, runs))
    assert index.name == "index.html" and written[-1] == "index.html"  # the index lands last
    assert {"results.json", "rtg-embedding-forward.png"} <= set(written)
    assert sorted(p.name for p in out.iterdir()) == sorted(set(written))  # no temp files left behind
