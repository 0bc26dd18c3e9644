"""DAS in a window model's state-embedding space: one direction of ``hook_state_embed`` shared by every frame.

The MemoryDT article finds its "instruction feature" as PC0 of the instruction objects' embedding rows: a
direction of the state-embedding space, the same whichever frame an object is drawn in. DAS asks the causal
version of that question: which direction ``q`` of that space, swapped from a source window into a base window in
every frame at once (``h_t ← h_t + ((h_src,t − h_t)·q) q``), makes the model act as on the source? A site in
:mod:`dt_circuits.features.sites` is one token's vector; this is one subspace of every state token, so it has its
own intervention here, trained by the same optimisation (:func:`das.fit_rotation`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dt_circuits.analysis.interventions import hooked
from dt_circuits.analysis.stats import group_shuffle_split  # noqa: F401 (named in _CODE)
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.features.das import Pairs, _frozen, actions, fit_rotation, inputs_digest

HOOK = "hook_state_embed"
#: Adam's learning rate here: twice das.LR, for 100 steps. Measured on MemoryDT-GatedMLP (256 training pairs,
#: Intel Xeon): at 0.05 and 50 steps the fit depends on the rotation's seed (held-out IIA 0.27 / 0.43 / 0.66 for
#: seeds 2 / 7 / 0 of one split: local optima); at 0.02 and 100 steps four seed x split fits gave IIA 0.64-0.70
#: and |cos| with PC0 0.815-0.839, as 750 pairs x 100 steps at das.LR did (0.65-0.69, 0.83-0.84; 63 s a fit);
#: the hand-set twins converge (IIA 1.0, |cos| with the read direction ≥ 0.98)
EMBED_LR = 0.02


def state_embeds(model: DecisionTransformer, inputs: object) -> torch.Tensor:
    """(B, T, d) state embeddings of window inputs (no autograd)."""
    with torch.no_grad():
        _, cache = model.run_with_cache(*inputs.args, names_filter=[HOOK])  # type: ignore[attr-defined]
    return cache[HOOK].float()


def swap_logits(
    model: DecisionTransformer, pairs: Pairs, q: torch.Tensor, source_embeds: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of each base window with every frame's state embedding moved to the source's along unit ``q``
    (d,). Differentiable in ``q``."""
    src = state_embeds(model, pairs.source) if source_embeds is None else source_embeds

    def swap(h: torch.Tensor, hook: object = None) -> torch.Tensor:
        return h + ((src.to(h.dtype) - h) @ q)[..., None] * q

    with hooked(model, [(HOOK, swap)]):
        return model(*pairs.base.args)


def differing(model: DecisionTransformer, pairs: Pairs) -> Pairs:
    """The pairs whose windows' state embeddings differ somewhere (the variable is drawn in some frame): on the
    others every swap is a no-op, so they neither train nor test a direction."""
    delta = (state_embeds(model, pairs.base) - state_embeds(model, pairs.source)).abs().amax(dim=(1, 2))
    keep = torch.nonzero(delta > 0).ravel().numpy()
    if len(keep) == 0:
        raise ConfigError("no pair's windows differ in their state embeddings: nothing to swap")
    return pairs.subset(keep)


def embed_das(
    model: DecisionTransformer, pairs: Pairs, *, seed: int = 0, steps: int = 100, lr: float = EMBED_LR
) -> torch.Tensor:
    """The unit direction (d,) DAS learns on ``pairs``: the first row of an orthogonal rotation trained for
    ``steps`` full-batch Adam steps (seeded, learning rate ``lr``) on the cross-entropy of the swapped logits to the
    source's action."""
    if model.cfg.n_timesteps == 1:
        raise ConfigError("a shared state-embedding direction needs a window model (more than one frame)")
    if steps < 1:
        raise ConfigError(f"DAS needs at least one optimisation step, got {steps}")
    src = state_embeds(model, pairs.source)
    target = actions(model, pairs.source)
    with _frozen(model):
        rows = fit_rotation(
            src.shape[-1], 1, target, lambda w: swap_logits(model, pairs, w[0], src), seed=seed, steps=steps, lr=lr
        )
    return rows[0] / rows[0].norm()


def swap_correct(model: DecisionTransformer, pairs: Pairs, q: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(per pair whose base and source actions differ: did the swap along ``q`` give the source's action, those
    pairs' row indices); empty arrays when no pair's actions differ. IIA is the mean of the first."""
    base_a, src_a = actions(model, pairs.base), actions(model, pairs.source)
    keep = torch.nonzero(base_a != src_a).ravel()
    if len(keep) == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    with torch.no_grad():
        got = swap_logits(model, pairs.subset(keep.numpy()), q.float()).argmax(-1)
    return (got == src_a[keep]).numpy(), keep.numpy()


#: the instruction's DAS fits in a claim: seeded episode splits, Adam steps and training pairs per fit (~25 s a
#: fit on MemoryDT-GatedMLP, Intel Xeon; see EMBED_LR)
SPLITS, STEPS, TRAIN_PAIRS = 3, 100, 256


#: where the shipped claims' instruction fits live (``claims/das/``, package data of the shipped claims)
SHIPPED_DAS_DIR = BUILTIN_CLAIMS_DIR / "das"
_KIND = "instruction-das"
#: the code a fit is a function of (besides the weights and the pairs): the fit and the forward it runs
_CODE = (
    "embed_das",
    "split_direction",
    "swap_logits",
    "state_embeds",
    "differing",
    "fit_rotation",
    "actions",
    "_frozen",
    "DecisionTransformer",
    "Pairs",
    "group_shuffle_split",  # how Pairs.split holds episodes out
)


def _code() -> tuple:
    from dt_circuits.dt import layers

    return (*(globals()[n] for n in _CODE), layers)


def instruction_identity(model: DecisionTransformer, pairs: Pairs, *, splits: int, steps: int,
                         train_pairs: int) -> dict[str, Any] | None:  # fmt: skip
    """What the instruction's DAS fits are a function of on any CPU kind: the weights, the pairs' windows and
    values (integer data), the settings and the code; None when the code cannot be read."""
    from dt_circuits.core.cache import source_key
    from dt_circuits.dt.model import weights_digest

    source = source_key(*_code(), libraries=())
    if source is None:
        return None
    digest = inputs_digest(pairs.base, pairs.source, extra=(pairs.base_values, pairs.clusters))
    return {
        "weights_sha256": weights_digest(model), "pairs": digest,
        "splits": splits, "steps": steps, "train_pairs": train_pairs, "lr": EMBED_LR, "code": source["code"],
    }  # fmt: skip


def split_direction(
    model: DecisionTransformer, train: Pairs, split: int, *, steps: int, train_pairs: int
) -> np.ndarray:
    """Episode split ``split``'s direction: DAS (seed ``split``) on a seeded sample of ``train_pairs`` of its
    training half."""
    rows = np.sort(np.random.default_rng(split).choice(len(train), min(train_pairs, len(train)), replace=False))
    return embed_das(model, train.subset(rows), seed=split, steps=steps).numpy()


def instruction_directions(
    model: DecisionTransformer, *, splits: int = SPLITS, steps: int = STEPS, train_pairs: int = TRAIN_PAIRS
) -> tuple[Pairs, list[tuple[torch.Tensor, Pairs]]]:
    """The Memory instruction pairs whose windows differ and, per seeded episode split, the DAS direction fitted on
    (a seeded sample of ``train_pairs`` of) its training half, with the held-out half.

    A fit costs ~25 s, its float bytes depend on the CPU kind, and every claims run on the same weights asks for the
    same ones. So the fits the shipped claim reads on MemoryDT ship in ``claims/das/`` (npz without pickle, stored
    with their CPU-independent identity, :func:`instruction_identity`, and the CPU kind that fitted them) and are
    read on either kind when the identity matches exactly — the same directions on an AMD EPYC as on the Intel Xeon
    that recorded the claim; any other fit is kept in the disk cache (keyed with this machine's CPU kind).
    ``python -m dt_circuits.features.embed_das CHECKPOINT`` writes the shipped fits."""
    from dt_circuits.core.cache import cached_arrays, fit_key, shipped_entry
    from dt_circuits.dt.model import weights_digest
    from dt_circuits.features import memory_data

    pairs = differing(model, memory_data.instruction_pairs(model))
    halves = [pairs.split(s) for s in range(splits)]

    def fit() -> dict[str, np.ndarray]:
        directions = [split_direction(model, train, s, steps=steps, train_pairs=train_pairs)
                      for s, (train, _) in enumerate(halves)]  # fmt: skip
        return {"directions": np.stack(directions)}

    identity = instruction_identity(model, pairs, splits=splits, steps=steps, train_pairs=train_pairs)
    shipped = shipped_entry(SHIPPED_DAS_DIR, _KIND, identity)
    if shipped is not None:
        directions = shipped["directions"]
    else:
        key = fit_key(
            *_code(), memory_data, libraries=("minigrid", "gymnasium", "numpy", "torch", "scikit-learn"),
            weights=weights_digest(model), splits=splits, steps=steps, train_pairs=train_pairs, lr=EMBED_LR,
        )  # fmt: skip
        directions = cached_arrays(_KIND, key, fit)["directions"]
    return pairs, [(torch.from_numpy(q), test) for q, (_, test) in zip(directions, halves, strict=True)]


def ship_instruction_directions(model: DecisionTransformer) -> Path:
    """Fit the claim's instruction directions here (no cache) and write them into ``claims/das/`` with their
    identity and this machine's CPU kind."""
    from dt_circuits.core.cache import write_entry
    from dt_circuits.core.machine import machine_kind
    from dt_circuits.features import memory_data

    pairs = differing(model, memory_data.instruction_pairs(model))
    identity = instruction_identity(model, pairs, splits=SPLITS, steps=STEPS, train_pairs=TRAIN_PAIRS)
    if identity is None:
        raise ConfigError("the fit's source cannot be read: nothing to key shipped fits on")
    directions = np.stack([split_direction(model, pairs.split(s)[0], s, steps=STEPS, train_pairs=TRAIN_PAIRS)
                           for s in range(SPLITS)])  # fmt: skip
    kind = json.dumps(machine_kind(), sort_keys=True)
    return write_entry(SHIPPED_DAS_DIR, _KIND, identity, {"directions": directions, "trained_on": np.array(kind)})


if __name__ == "__main__":
    import sys

    from dt_circuits.core.threads import configure_threads
    from dt_circuits.dt.checkpoint import load_checkpoint

    configure_threads()  # the claims' thread policy (the CLI's and the tests'): the fit's bytes depend on it
    print(f"wrote {ship_instruction_directions(load_checkpoint(sys.argv[1]))}")
