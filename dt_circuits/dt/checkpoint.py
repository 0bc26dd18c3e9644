"""Checkpoint I/O: our own format (safetensors + manifest.json) and the DTI importer.

Loading never executes code from a file: our weights are safetensors, DTI files go through
``torch.load(..., weights_only=True)``. Every way a file can be wrong ends in one CheckpointError line that
names the problem (missing file, truncated file, unsafe pickle, wrong tensor shape, unsupported config).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dt_circuits.core.errors import CheckpointError, ConfigError
from dt_circuits.core.io import default_mode, read_json, sha256_file
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.spec import EnvSpec

FORMAT = "dt-circuits-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"


@dataclass
class CheckpointInfo:
    """Where a model came from: attached to every loaded model as ``model.checkpoint_info``."""

    path: str
    kind: str  # "dt-circuits" or "dti"
    env: EnvSpec
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.get("name") or Path(self.path).stem


def load_checkpoint(path: str | os.PathLike[str]) -> DecisionTransformer:
    """Load our checkpoint directory (or its manifest/weights file) or a DTI ``.pt`` file, in eval mode."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.is_dir() or p.name in (MANIFEST_FILE, WEIGHTS_FILE):
        model = _load_own(p if p.is_dir() else p.parent)
    else:
        from dt_circuits.dt.references import verify_published

        verify_published(p)  # a file named like a published checkpoint must have its bytes
        model = import_dti(p)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


# -- our format ---------------------------------------------------------------------------------------------


def save_checkpoint(
    model: DecisionTransformer,
    directory: str | os.PathLike[str],
    *,
    env: EnvSpec,
    name: str,
    training: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``directory`` atomically: weights and manifest land together or not at all."""
    directory = Path(directory)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "model_config": model.cfg.to_dict(),
        "env": env.to_dict(),
        "training": training or {},
    }
    manifest.update(extra or {})
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp's 0o700 would hide the checkpoint from others
        if directory.exists():
            # keep files we do not own (figures, calibration JSON) across a rewrite
            for item in directory.iterdir():
                if item.name not in (WEIGHTS_FILE, MANIFEST_FILE):
                    dest = tmp / item.name
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, dest)
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        os.chmod(tmp / WEIGHTS_FILE, default_mode())  # safetensors writes 0o600
        manifest["weights_sha256"] = sha256_file(tmp / WEIGHTS_FILE)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of one of our checkpoints, with the type of every field the package reads checked.

    A manifest is data from disk (a download, a hand edit); a wrong type here must end as one CheckpointError
    line, not as an AttributeError deep inside a claim run.
    """
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise CheckpointError(f"not a dt-circuits checkpoint: {path} is missing")
    manifest = read_json(path, "manifest", CheckpointError, prefix="bad checkpoint: ")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"bad checkpoint: {path} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"bad checkpoint: {path} has format_version {manifest.get('format_version')!r}, "
            f"this version reads {FORMAT_VERSION}"
        )
    _check_manifest_fields(manifest, path)
    return manifest


def require_retrainable(path: str | os.PathLike[str]) -> None:
    """Retraining (the gate and its populations) needs the training data and config our manifest records; a DTI
    .pt file or another folder has neither, and "manifest.json is missing" would not say why that matters."""
    p = Path(path)
    if not (p / MANIFEST_FILE).is_file():
        what = "it does not exist" if not p.exists() else "a file" if not p.is_dir() else f"no {MANIFEST_FILE}"
        raise CheckpointError(
            f"{p} is not a dt-circuits checkpoint directory ({what}): only those, which record their training "
            f"data and config in {MANIFEST_FILE}, can be retrained and gated"
        )


#: Optional manifest fields read by the package, and the JSON type each must have.
_MANIFEST_TYPES: dict[str, tuple[type, str]] = {
    "name": (str, "a string"),
    "model_config": (dict, "a JSON object"),
    "env": (dict, "a JSON object"),
    "training": (dict, "a JSON object"),
    "roles": (dict, "a JSON object"),
    "expectations": (dict, "a JSON object"),
    "weights_sha256": (str, "a string"),
}


def _check_manifest_fields(manifest: dict[str, Any], path: Path) -> None:
    for key, (kind, text) in _MANIFEST_TYPES.items():
        if key in manifest and not isinstance(manifest[key], kind):
            raise CheckpointError(
                f"bad checkpoint: {path} field {key!r} must be {text}, got {type(manifest[key]).__name__}"
            )
    for role, comp in (manifest.get("roles") or {}).items():
        if not isinstance(comp, str):
            raise CheckpointError(f"bad checkpoint: {path} binds role {role!r} to {comp!r}, not a component name")
    for claim_id, entry in (manifest.get("expectations") or {}).items():
        if not isinstance(entry, dict) or entry.get("expected") not in ("holds", "fails"):
            raise CheckpointError(
                f"bad checkpoint: {path} expectation for {claim_id!r} must be an object with "
                '"expected": "holds" or "fails"'
            )


def _load_own(directory: Path) -> DecisionTransformer:
    manifest = read_manifest(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"bad checkpoint: {weights} is missing")
    if not weights.is_file():
        raise CheckpointError(f"bad checkpoint: {weights} is not a file")
    expected = manifest.get("weights_sha256")
    if expected and sha256_file(weights) != expected:
        raise CheckpointError(f"bad checkpoint: {weights} does not match the sha256 in its manifest")
    try:
        cfg = DTConfig.from_dict(dict(manifest.get("model_config") or {}))
        env = EnvSpec.from_dict(dict(manifest.get("env") or {}))
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"bad checkpoint config in {directory / MANIFEST_FILE}: {exc}") from None
    if env.max_steps > cfg.max_timestep + 1:  # a rollout would run past the time embedding mid-episode
        raise CheckpointError(
            f"bad checkpoint config in {directory / MANIFEST_FILE}: env max_steps {env.max_steps} needs more "
            f"timesteps than the time embedding has ({cfg.max_timestep + 1} rows)"
        )
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # any parser failure on untrusted bytes is a bad file, never a crash
        raise CheckpointError(f"bad checkpoint: {weights} is not readable safetensors ({_first_line(exc)})") from None
    model = _build(cfg, tensors, source=str(weights))
    model.checkpoint_info = CheckpointInfo(str(directory), "dt-circuits", env, manifest)
    return model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _build(cfg: DTConfig, tensors: dict[str, torch.Tensor], *, source: str) -> DecisionTransformer:
    """A model of shape ``cfg`` holding ``tensors``, after checking every tensor against that shape.

    The shapes come from the config alone (``DTConfig.param_shapes``), so a config that claims a huge model
    (max_timestep 1e12, d_mlp 1e9) is refused by name before anything is allocated. The layer count is checked
    against the file first, so n_layers 1e6 does not even list a million blocks' shapes.
    """
    layers = {k.split(".")[1] for k in tensors if k.startswith("blocks.")}
    if layers != {str(i) for i in range(len(layers))} or len(layers) != cfg.n_layers:
        raise CheckpointError(
            f"bad checkpoint {source}: the config says n_layers={cfg.n_layers} but the file holds "
            f"{len(layers)} block(s) ({', '.join(sorted(layers, key=int)) or 'none'})"
        )
    _check_tensors(cfg.param_shapes(), tensors, source=source)
    model = DecisionTransformer(cfg)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    return model


def _check_tensors(own: dict[str, tuple[int, ...]], tensors: dict[str, torch.Tensor], *, source: str) -> None:
    """Name any missing, unexpected, misshapen, non-float or non-finite tensor."""
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing:
        raise CheckpointError(f"bad checkpoint {source}: missing tensor(s) {', '.join(missing)}")
    if unexpected:
        raise CheckpointError(f"bad checkpoint {source}: unexpected tensor(s) {', '.join(unexpected)}")
    for name, value in tensors.items():
        if tuple(value.shape) != own[name]:
            raise CheckpointError(
                f"bad checkpoint {source}: tensor {name} has shape {tuple(value.shape)}, expected {own[name]}"
            )
        if not value.dtype.is_floating_point:
            raise CheckpointError(f"bad checkpoint {source}: tensor {name} has dtype {value.dtype}")
        if not torch.isfinite(value.to(torch.float32)).all():
            raise CheckpointError(f"bad checkpoint {source}: tensor {name} holds NaN or inf (as float32)")


# -- DTI import ---------------------------------------------------------------------------------------------

#: DTI state_dict key -> (our key, transform)
_DTI_GLOBAL = {
    "reward_embedding.0.weight": ("W_rtg", lambda t: t[:, 0]),
    "state_embedding.weight": ("W_state", lambda t: t.T),
    "time_embedding.weight": ("W_time", lambda t: t),
    "transformer.pos_embed.W_pos": ("W_pos", lambda t: t),
    "action_predictor.weight": ("W_U", lambda t: t.T),
    "action_predictor.bias": ("b_U", lambda t: t),
}
_DTI_BLOCK = ["attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "attn.b_Q", "attn.b_K", "attn.b_V", "attn.b_O",
              "mlp.W_in", "mlp.b_in", "mlp.W_out", "mlp.b_out"]  # fmt: skip
#: Number of dimensions of every DTI tensor this importer reads (checked before any shape is indexed).
_DTI_NDIM = {"reward_embedding.0.weight": 2, "state_embedding.weight": 2, "time_embedding.weight": 2,
             "transformer.pos_embed.W_pos": 2, "action_predictor.weight": 2, "action_predictor.bias": 1,
             "attn.W_Q": 3, "attn.W_K": 3, "attn.W_V": 3, "attn.W_O": 3, "attn.b_Q": 2, "attn.b_K": 2,
             "attn.b_V": 2, "attn.b_O": 1, "mlp.W_in": 2, "mlp.b_in": 1, "mlp.W_out": 2, "mlp.b_out": 1,
             "mlp.W_gate": 2, "ln1.w": 1, "ln1.b": 1, "ln2.w": 1, "ln2.b": 1, "transformer.ln_final.w": 1,
             "transformer.ln_final.b": 1, "action_embedding.0.weight": 2}  # fmt: skip


def _safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into one CheckpointError line.

    A pickle that names a callable (GLOBAL) is refused as one that would run code. The weights-only unpickler
    cannot tell other disallowed opcodes in a bare pickle from corrupt bytes, so those are refused naming both
    possibilities. Anything else the parser raises on corrupt bytes (RuntimeError, struct.error, IndexError,
    ...) is a bad file: untrusted bytes never surface as a crash.
    """
    if not path.is_file():
        raise CheckpointError(f"bad checkpoint {path}: not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next(
            (line for line in first if "GLOBAL" in line or "Unsupported" in line),
            first[0] if first else "",
        )
        what = (
            "it is a pickle that would need code execution to unpickle"
            if "GLOBAL" in detail
            else "the weights-only unpickler rejects it (a pickle that would need code execution, or corrupt bytes)"
        )
        raise CheckpointError(f"refusing to load {path}: {what} ({detail.strip()})") from None
    except Exception as exc:  # any parser failure on untrusted bytes is a bad file, never a crash
        raise CheckpointError(
            f"bad checkpoint {path}: not a readable torch file (truncated or corrupt?): {_first_line(exc)}"
        ) from None


def _json_config(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"bad checkpoint {path}: {key} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"bad checkpoint {path}: {key} must be a JSON object, got {type(value).__name__}")
    return value


def import_dti(path: str | os.PathLike[str]) -> DecisionTransformer:
    """Import a DecisionTransformerInterpretability checkpoint (a torch.save'd dict with JSON-string configs).

    Missing config keys are derived from tensor shapes. Both published checkpoints load: the post's one-timestep
    model and MemoryDT-GatedMLP (2 layers, LayerNorm, gated MLP, 9-timestep context, action tokens). Values this
    architecture cannot represent (RMS norm, CNN or linear time embeddings, other activations) are refused by
    name rather than silently mis-loaded.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    raw = _safe_torch_load(path)
    if not isinstance(raw, dict) or "model_state_dict" not in raw:
        raise CheckpointError(f"bad checkpoint {path}: not a DTI checkpoint (no 'model_state_dict')")
    sd = raw["model_state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise CheckpointError(f"bad checkpoint {path}: model_state_dict is not a dict of named tensors")
    mcfg = _json_config(raw, "model_config", path)
    ecfg = _json_config(raw, "environment_config", path)

    def need(key: str) -> torch.Tensor:
        if key not in sd:
            raise CheckpointError(f"bad checkpoint {path}: missing tensor {key}")
        ndim = _DTI_NDIM[key.split(".", 3)[-1] if key.startswith("transformer.blocks.") else key]
        if sd[key].ndim != ndim:
            raise CheckpointError(
                f"bad checkpoint {path}: tensor {key} has shape {tuple(sd[key].shape)}, expected {ndim} dimensions"
            )
        return sd[key]

    for key, bad, why in [
        (
            "layer_norm",
            lambda v: v not in (False, None, "", "LN", True),
            "only LayerNorm ('LN') or none is supported",
        ),
        (
            "state_embedding_type",
            lambda v: str(v).lower() != "grid",
            "only 'grid' state embeddings are supported",
        ),
        (
            "time_embedding_type",
            lambda v: v != "embedding",
            "only 'embedding' time embeddings are supported",
        ),
        ("activation_fn", lambda v: v != "relu", "only ReLU MLPs are supported"),
    ]:
        if key in mcfg and bad(mcfg[key]):
            raise CheckpointError(f"unsupported DTI model_config {key}={mcfg[key]!r} in {path}: {why}")
    if ecfg.get("fully_observed") or ecfg.get("img_obs"):
        raise CheckpointError(f"unsupported DTI environment_config in {path}: only the 7x7 partial grid view")
    layer_norm = mcfg.get("layer_norm") in ("LN", True)
    if layer_norm and "transformer.blocks.0.ln1.w" not in sd:
        raise CheckpointError(
            f"bad checkpoint {path}: model_config layer_norm={mcfg['layer_norm']!r} but there is no tensor "
            "transformer.blocks.0.ln1.w"
        )
    gated = bool(mcfg.get("gated_mlp", "transformer.blocks.0.mlp.W_gate" in sd))
    n_pos = int(need("transformer.pos_embed.W_pos").shape[0])
    if "n_ctx" in mcfg and mcfg["n_ctx"] != n_pos:
        raise CheckpointError(
            f"bad checkpoint {path}: model_config n_ctx={mcfg['n_ctx']!r} does not match "
            f"transformer.pos_embed.W_pos ({n_pos} positions)"
        )

    w_q = need("transformer.blocks.0.attn.W_Q")
    n_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.blocks.")})
    n_inputs = need("state_embedding.weight").shape[-1]
    encoding = {147: "index", 980: "one_hot"}.get(int(n_inputs))
    if encoding is None:
        raise CheckpointError(
            f"bad checkpoint {path}: state_embedding.weight has {n_inputs} inputs; "
            "expected 147 (index) or 980 (one-hot)"
        )
    if "one_hot_obs" in ecfg and bool(ecfg["one_hot_obs"]) != (encoding == "one_hot"):
        raise CheckpointError(
            f"bad checkpoint {path}: one_hot_obs={ecfg['one_hot_obs']} contradicts "
            f"state_embedding.weight ({n_inputs} inputs)"
        )
    try:
        n_heads = int(mcfg.get("n_heads", w_q.shape[0]))
        d_model = int(mcfg.get("d_model", w_q.shape[1]))
        cfg = DTConfig(
            n_layers=int(mcfg.get("n_layers", n_layers)),
            n_heads=n_heads,
            d_model=d_model,
            d_head=int(mcfg.get("d_head", d_model // max(n_heads, 1))),  # DTI: d_model // n_heads
            d_mlp=int(mcfg.get("d_mlp", need("transformer.blocks.0.mlp.W_in").shape[-1])),
            max_timestep=int(need("time_embedding.weight").shape[0]) - 1,
            obs_encoding=encoding,
            n_actions=int(need("action_predictor.weight").shape[0]),
            n_ctx=n_pos,
            normalization="LN" if layer_norm else "none",
            mlp_type="gated" if gated else "relu",
        )
        env = EnvSpec.for_env(
            ecfg.get("env_id", EnvSpec.env_id),
            max_steps=int(ecfg.get("max_steps", cfg.max_timestep)),
            view_size=int(ecfg.get("view_size", 7)),
        )
    except (ConfigError, TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"unsupported DTI config in {path}: {exc}") from None
    if env.max_steps > cfg.max_timestep + 1:
        raise CheckpointError(
            f"bad checkpoint {path}: env max_steps {env.max_steps} needs more timesteps than the "
            f"time embedding has ({cfg.max_timestep + 1} rows)"
        )

    tensors = {ours: fn(need(theirs)) for theirs, (ours, fn) in _DTI_GLOBAL.items()}
    block_keys = list(_DTI_BLOCK)
    if gated:
        block_keys.append("mlp.W_gate")
    if layer_norm:
        block_keys += ["ln1.w", "ln1.b", "ln2.w", "ln2.b"]
        tensors.update({"ln_final.w": need("transformer.ln_final.w"), "ln_final.b": need("transformer.ln_final.b")})
    if cfg.n_timesteps > 1:
        tensors["W_action"] = need("action_embedding.0.weight")
    for layer in range(cfg.n_layers):
        for name in block_keys:
            tensors[f"blocks.{layer}.{name}"] = need(f"transformer.blocks.{layer}.{name}")
    model = _build(cfg, tensors, source=str(path))
    manifest = {
        "name": path.stem,
        "model_config": cfg.to_dict(),
        "env": env.to_dict(),
        "source": {"kind": "dti", "path": str(path), "sha256": sha256_file(path)},
        "dti_configs": {"model_config": mcfg, "environment_config": ecfg},
    }
    model.checkpoint_info = CheckpointInfo(str(path), "dti", env, manifest)
    return model
