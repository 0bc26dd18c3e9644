"""Sparse autoencoders on a DT's activations at one site: a TopK SAE, its quality, and its latents' labels.

TopK (Gao et al. 2024): ``z = TopK(ReLU((x − b_dec) W_enc + b_enc))``, ``x̂ = z W_dec + b_dec``, decoder rows kept at
unit norm, encoder initialised as the decoder's transpose and ``b_dec`` at the data mean. sae-lens (the field's
library) pins transformer-lens < 4, and ``overcomplete`` is not in this project's package set; the SAE is ~40 lines
of torch, trained full-batch-seeded with Adam, deterministic on one thread.

Quality is what the field reports: the fraction of variance unexplained (FVU), L0 (latents active per input), dead
latents (never active on the evaluation set), and the change in the model's own action loss when ``x̂`` is spliced
in at the site (``spliced_loss``). Each latent is labelled by the world-state variable value its firing predicts
best (F1 of "latent > 0" against "variable == value", :func:`latent_labels`): the post's "bank of scenarios".
Saved as safetensors with a JSON manifest (the checkpoint's hash, the site, the data, the seed, the metrics).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError

SAE_FORMAT = "dt-circuits-sae"
SAE_FORMAT_VERSION = 1
WEIGHTS_FILE = "sae.safetensors"
MANIFEST_FILE = "sae.json"


@dataclass(frozen=True)
class SAEConfig:
    """Shape and training of one SAE (full-data epochs of seeded minibatches, Adam)."""

    n_latents: int = 256
    k: int = 8
    steps: int = 2000
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_latents < 1 or not 1 <= self.k <= self.n_latents:
            raise ConfigError(f"an SAE needs n_latents >= 1 and 1 <= k <= n_latents, got {self.n_latents}, {self.k}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0:
            raise ConfigError(
                f"SAE training needs steps, batch >= 1 and lr > 0, got {self.steps}, {self.batch}, {self.lr}"
            )


class TopKSAE(torch.nn.Module):
    """A TopK sparse autoencoder over ``d_in``-dimensional activations."""

    def __init__(self, d_in: int, n_latents: int, k: int) -> None:
        super().__init__()
        if d_in < 1:
            raise ConfigError(f"an SAE needs d_in >= 1, got {d_in}")
        self.d_in, self.n_latents, self.k = d_in, n_latents, k
        self.W_enc = torch.nn.Parameter(torch.zeros(d_in, n_latents))
        self.b_enc = torch.nn.Parameter(torch.zeros(n_latents))
        self.W_dec = torch.nn.Parameter(torch.zeros(n_latents, d_in))
        self.b_dec = torch.nn.Parameter(torch.zeros(d_in))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def train_sae(acts: torch.Tensor, cfg: SAEConfig = SAEConfig()) -> tuple[TopKSAE, list[float]]:
    """An SAE trained on ``acts`` ((N, d) float), and its reconstruction loss every 100 steps. Seeded."""
    if acts.ndim != 2 or len(acts) < 2:
        raise ConfigError(f"an SAE trains on an (N >= 2, d) matrix of activations, got shape {tuple(acts.shape)}")
    x = acts.detach().float()
    gen = torch.Generator().manual_seed(cfg.seed)
    sae = TopKSAE(x.shape[1], cfg.n_latents, cfg.k)
    with torch.no_grad():
        sae.W_dec.copy_(torch.randn(cfg.n_latents, x.shape[1], generator=gen))
        sae.normalise_decoder()
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_dec.copy_(x.mean(0))
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    curve = []
    with torch.enable_grad():
        for step in range(cfg.steps):
            rows = torch.randint(0, len(x), (min(cfg.batch, len(x)),), generator=gen)
            batch = x[rows]
            loss = (sae(batch) - batch).pow(2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sae.normalise_decoder()
            if step % 100 == 0 or step == cfg.steps - 1:
                curve.append(round(float(loss.detach()), 6))
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae, curve


@torch.no_grad()
def sae_metrics(sae: TopKSAE, acts: torch.Tensor) -> dict[str, float]:
    """FVU, mean L0 and the share of dead latents (never active) on ``acts``."""
    x = acts.float()
    z = sae.encode(x)
    err = (sae.decode(z) - x).pow(2).sum()
    var = (x - x.mean(0)).pow(2).sum()
    return {
        "fvu": float(err / var) if var > 0 else float("nan"),
        "l0": float((z > 0).sum(-1).float().mean()),
        "dead_fraction": float(((z > 0).sum(0) == 0).float().mean()),
    }


def splice_hook(site: Any, sae: TopKSAE, *, ablate: tuple[int, ...] = (), reconstruct: bool = True):
    """A write hook at ``site``: the activation replaced by the SAE's reconstruction (``reconstruct``), or kept
    with its error term and only the ``ablate`` latents' contributions removed (``x − Σ z_j W_dec[j]``: ablating a
    feature, not the SAE's reconstruction error)."""
    from dt_circuits.features.sites import write_hook

    idx = list(ablate)

    def value(h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(h.shape[0], -1).float()
        z = sae.encode(flat)
        out = sae.decode(z) if reconstruct else flat
        if idx:
            out = out - z[:, idx] @ sae.W_dec[idx]
        return out.to(h.dtype).reshape(h.shape)

    return write_hook(site, value)


@torch.no_grad()
def spliced_loss(model: Any, inputs: Any, site: Any, sae: TopKSAE) -> dict[str, float]:
    """The model's cross-entropy against its own greedy actions, clean and with ``x̂`` spliced in at ``site``, and
    their difference (the field's "downstream loss" of an SAE; 0 for a perfect one)."""
    from dt_circuits.analysis.interventions import run

    clean = run(model, inputs)
    target = clean.argmax(-1)
    spliced = run(model, inputs, [splice_hook(site, sae)])
    ce = torch.nn.functional.cross_entropy
    base, with_sae = float(ce(clean, target)), float(ce(spliced, target))
    return {"clean_loss": base, "spliced_loss": with_sae, "delta_loss": with_sae - base}


def f1_matrix(active: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """F1 of each latent's firing (``active`` (N, m) bool) against each binary target (``targets`` (N, t) bool):
    (m, t), 2·TP / (2·TP + FP + FN); 0 where a latent never fires and the target never holds."""
    a, t = active.astype(np.float64), targets.astype(np.float64)
    tp = a.T @ t
    fp = a.sum(0)[:, None] - tp
    fn = t.sum(0)[None, :] - tp
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def best_latents(scores: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per column of ``scores`` ((latents, targets) F1), the best latent; among latents tied on F1 (to 1e-9), the
    one with the largest mean activation where it fires (a TopK SAE forced to keep k latents active has latents
    that fire on the right rows with next to nothing: they carry none of the reconstruction)."""
    fires = z > 0
    strength = np.divide(z.sum(0), fires.sum(0), out=np.zeros(z.shape[1]), where=fires.sum(0) > 0)
    best = []
    for col in scores.T:
        tied = np.flatnonzero(col >= col.max() - 1e-9)
        best.append(int(tied[np.argmax(strength[tied])]))
    return np.array(best, dtype=np.int64)


def latent_labels(
    sae: TopKSAE, acts: torch.Tensor, variables: dict[str, np.ndarray]
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(per latent: the variable value its firing predicts best and the F1; per "variable=value": the best latent
    and its F1). ``variables`` maps a name to its per-row values; every value is a one-vs-rest target."""
    with torch.no_grad():
        z = sae.encode(acts.float()).numpy()
    active = z > 0
    names, columns = [], []
    for var, values in variables.items():
        values = np.asarray(values)
        if len(values) != len(active):
            raise ConfigError(f"variable {var!r} has {len(values)} values for {len(active)} activations")
        for v in np.unique(values):
            names.append(f"{var}={v}")
            columns.append(values == v)
    scores = f1_matrix(active, np.stack(columns, axis=1))
    per_latent = [
        {"latent": j, "label": names[int(np.argmax(scores[j]))], "f1": round(float(scores[j].max()), 4),
         "fires": int(active[:, j].sum())}
        for j in range(scores.shape[0])
    ]  # fmt: skip
    best = best_latents(scores, z)
    per_value = {
        name: {"latent": int(best[i]), "f1": round(float(scores[best[i], i]), 4)} for i, name in enumerate(names)
    }
    return per_latent, per_value


def save_sae(directory: str | Path, sae: TopKSAE, manifest: dict[str, Any]) -> Path:
    """Write ``sae.safetensors`` and ``sae.json`` (atomic each) into ``directory``; the manifest gains the format
    and the SAE's shape."""
    from safetensors.torch import save

    from dt_circuits.core.io import write_bytes_atomic, write_json_atomic

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in sae.state_dict().items()}
    write_bytes_atomic(out / WEIGHTS_FILE, save(tensors))
    shape = {"d_in": sae.d_in, "n_latents": sae.n_latents, "k": sae.k}
    write_json_atomic(out / MANIFEST_FILE, {"format": SAE_FORMAT, "format_version": SAE_FORMAT_VERSION, **shape,
                                            **manifest})  # fmt: skip
    return out


def load_sae(directory: str | Path) -> tuple[TopKSAE, dict[str, Any]]:
    """An SAE and its manifest from :func:`save_sae`'s files; one-line ConfigError for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    try:
        manifest = json.loads((d / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{d}: no readable SAE manifest ({MANIFEST_FILE}): {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SAE_FORMAT:
        raise ConfigError(f"{d / MANIFEST_FILE}: not an SAE manifest (format {SAE_FORMAT!r})")
    try:
        sae = TopKSAE(int(manifest["d_in"]), int(manifest["n_latents"]), int(manifest["k"]))
        tensors = load_file(d / WEIGHTS_FILE)
        sae.load_state_dict(tensors)
    except (KeyError, ValueError, TypeError, OSError, RuntimeError, SafetensorError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{d}: the SAE does not load ({first})") from None
    sae.eval()
    for p in sae.parameters():
        p.requires_grad_(False)
    return sae, manifest


# -- an SAE per site of a checkpoint (the features table) --------------------------------------------------------

#: latents per input dimension, active latents per input, training steps: the table's SAE shape, fixed in advance
WIDTH = 2
K = 4
TABLE_STEPS = 1500
#: states of a seeded random walk in the real env added to the SAE's training data (no labels needed there)
WALK_STATES = 4096


@functools.lru_cache(maxsize=4)
def _walk(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(obs, timesteps, RTGs) of the seeded walk (:func:`dt_circuits.env.walks.walk`: seed 0's is shipped, ~1 s
    of env steps otherwise), the same for every SAE of every site and checkpoint in a process (read only)."""
    from dt_circuits.env.walks import walk as seeded_walk
    from dt_circuits.features.data import RTGS

    walk = seeded_walk(n, seed=seed)
    rng = np.random.default_rng([seed, 27, 4])
    return walk.obs, walk.timesteps, rng.choice(np.array(RTGS, dtype=np.float32), size=len(walk.obs))


#: the checkpoint's own (on-policy) states an SAE trains on at most, beside the walk's 4,096 and the generated
#: states: a checkpoint's rollouts give ~17,000, which would otherwise outweigh the generated families several times
ON_POLICY_SAE_STATES = 4096


def own_rows(rows: np.ndarray, seed: int, cap: int = ON_POLICY_SAE_STATES) -> np.ndarray:
    """``rows`` (indices of on-policy states), or a seeded sample of ``cap`` of them in their order when there are
    more: the own states an SAE trains on."""
    if len(rows) <= cap:
        return rows
    return np.sort(rows[np.random.default_rng(seed).choice(len(rows), cap, replace=False)])


def walk_inputs(model: Any, *, seed: int, n: int = WALK_STATES) -> Any:
    """Inputs of a seeded random walk of ``n`` env steps, at seeded RTGs of the probe set's three (the SAE's
    unlabelled training states: what the model sees beside the generated families)."""
    from dt_circuits.analysis.interventions import Inputs

    obs, timesteps, rtg = _walk(seed, n)
    return Inputs.make(obs, rtg, np.minimum(timesteps, model.cfg.max_timestep))


def table_config(d: int, seed: int) -> SAEConfig:
    """The table's SAE shape for ``d``-dimensional activations: :data:`WIDTH` × d latents, :data:`K` active."""
    return SAEConfig(n_latents=WIDTH * d, k=min(K, WIDTH * d), steps=TABLE_STEPS, seed=seed)


def site_sae(
    model: Any, site: Any, train_acts: torch.Tensor, *, seed: int, cache: bool = False
) -> tuple[TopKSAE, float]:
    """The table's SAE at one site (:data:`WIDTH` × d latents, :data:`K` active), and its training seconds.

    ``cache``: kept in the disk cache (:func:`cached_sae`), for claims that ask for the same SAE every run; the
    table trains its own, so its seconds are a training's."""
    import time

    cfg = table_config(train_acts.shape[1], seed)
    start = time.perf_counter()
    sae = cached_sae(train_acts, cfg) if cache else train_sae(train_acts, cfg)[0]
    return sae, time.perf_counter() - start


def cached_sae(acts: torch.Tensor, cfg: SAEConfig) -> TopKSAE:
    """:func:`train_sae` once per (training activations, config) on this machine: the key is the activations' own
    digest (so the checkpoint, site and data are all in it), the config, this module's code, torch's version and the
    CPU kind (float kernels decide the bytes). Later calls load the same weights from the disk cache."""
    import sys
    from dataclasses import asdict

    from dt_circuits.core.cache import array_digest, cached_arrays, fit_key

    data = acts.detach().float().contiguous()

    def fit() -> dict[str, np.ndarray]:
        sae, _ = train_sae(data, cfg)
        return {name: t.detach().numpy() for name, t in sae.state_dict().items()}

    key = fit_key(sys.modules[__name__], libraries=("numpy", "torch"), acts=array_digest(data.numpy()),
                  config=asdict(cfg))  # fmt: skip
    arrays = cached_arrays("sae", key, fit)
    sae = TopKSAE(data.shape[1], cfg.n_latents, cfg.k)
    sae.load_state_dict({name: torch.from_numpy(np.asarray(a)) for name, a in arrays.items()})
    sae.eval()
    return sae


def latent_f1(
    sae: TopKSAE, acts: torch.Tensor, latents: dict[str, int], values: dict[str, np.ndarray]
) -> dict[str, float]:
    """F1 (4 decimals) on ``acts`` of each ``"variable=value"`` name's latent firing against that value, for the
    names whose variable ``values`` has (labels per row of ``acts``)."""
    with torch.no_grad():
        active = (sae.encode(acts.float()) > 0).numpy()
    out = {}
    for name, latent in latents.items():
        var, value = name.split("=", 1)
        if var in values:
            target = np.asarray(values[var]) == value
            out[name] = round(float(f1_matrix(active[:, [latent]], target[:, None])[0, 0]), 4)
    return out


def sae_row(
    model: Any,
    site: Any,
    sae: TopKSAE,
    seconds: float,
    test_inputs: Any,
    train_acts: torch.Tensor,
    test_acts: torch.Tensor,
    train_values: dict[str, np.ndarray],
    test_values: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Quality on held-out states (FVU, L0, dead latents, Δ action loss spliced in) and, per variable value, the
    latent chosen by F1 on the training states with its F1 on the held-out ones."""
    quality = sae_metrics(sae, test_acts)
    loss = spliced_loss(model, test_inputs, site, sae)
    _, chosen = latent_labels(sae, train_acts, train_values)
    held_out = latent_f1(sae, test_acts, {name: pick["latent"] for name, pick in chosen.items()}, test_values)
    f1 = {name: {"latent": pick["latent"], "f1_train": pick["f1"], "f1": held_out[name]}
          for name, pick in chosen.items()}  # fmt: skip
    return {
        "site": str(site),
        "d_in": sae.d_in,
        "n_latents": sae.n_latents,
        "k": sae.k,
        **{k: round(v, 4) for k, v in quality.items()},
        "delta_loss": round(loss["delta_loss"], 5),
        "seconds": round(seconds, 1),
        "f1": f1,
    }


def sae_basis(sae: TopKSAE, acts: torch.Tensor, values: np.ndarray, target: int = 1) -> tuple[torch.Tensor, int]:
    """(d × 1 unit decoder direction, latent) of the latent whose firing best predicts ``values == target`` (F1)
    on ``acts``: the SAE's candidate for one value of a variable, for the same interchange as DAS, probe and
    neuron."""
    with torch.no_grad():
        z = sae.encode(acts.float()).numpy()
    j = int(best_latents(f1_matrix(z > 0, (np.asarray(values) == target)[:, None]), z)[0])
    direction = sae.W_dec[j] / sae.W_dec[j].norm().clamp_min(1e-12)
    return direction[:, None].detach().clone(), j
