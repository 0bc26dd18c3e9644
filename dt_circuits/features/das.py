"""Interchange interventions on a subspace at a site, and DAS: the subspace found by a learned rotation.

An interchange intervention runs the *base* input with the site's activation moved, inside a subspace spanned by
the orthonormal columns of ``Q`` (d × k), to the *source* input's: ``h ← h + (h_src − h) Q Qᵀ``. If the subspace
carries the variable the pair differs in, the model then acts as it does on the source. Interchange
intervention accuracy (IIA) is the share of pairs where it does: the intervened action (argmax) equals the
model's own action on the source. Pairs where the base and source actions agree say nothing (no intervention at
all would "succeed"), so IIA is taken over the pairs whose actions differ only; an empty subspace scores 0.

DAS (Geiger et al. 2023) learns ``Q`` as the first k rows of an orthogonal matrix (``torch.nn.utils.
parametrizations.orthogonal``) by minimising the cross-entropy between the intervened logits and the source
action. Written here against TransformerLens hooks because pyvene 0.1.8 cannot wrap this model: its intervenable
model cards are keyed on Hugging Face model classes (no HookedTransformer), and it pulls in datasets, accelerate
and plotnine. The same interchange on a probe's direction (k = 1) and on single neurons gives the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dt_circuits.analysis.interventions import Inputs, hooked, run
from dt_circuits.analysis.stats import group_shuffle_split
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.features.sites import Site, activations, write_hook

#: DAS optimisation: full-batch Adam steps and learning rate
STEPS = 300
LR = 0.01


def inputs_digest(*batches: Any, extra: tuple[np.ndarray, ...] = ()) -> str:
    """sha256 of model inputs — each batch's ``args`` (observations, RTGs, timesteps; a window batch's actions too)
    — and ``extra`` arrays: integer data, so the same digest on every CPU kind (what a fit's key or a shipped fit's
    identity names its training data by)."""
    from dt_circuits.core.cache import array_digest

    return array_digest(*(t.numpy() for b in batches for t in b.args), *extra)


@dataclass(frozen=True)
class Pairs:
    """Base and source inputs, row by row, that differ in one variable (its value on each side); clusters (poses)
    for the held-out split."""

    base: Inputs
    source: Inputs
    clusters: np.ndarray
    base_values: np.ndarray
    source_values: np.ndarray

    def __post_init__(self) -> None:
        sizes = {len(self.base), len(self.source), len(self.clusters), len(self.base_values), len(self.source_values)}
        if len(sizes) != 1:
            raise ConfigError(f"pairs of unequal lengths: {sorted(sizes)}")
        if np.any(self.base_values == self.source_values):
            raise ConfigError("a pair must differ in the variable")
        if len(self.base) == 0:
            raise ConfigError("no pairs")

    def __len__(self) -> int:
        return len(self.base)

    def subset(self, rows: np.ndarray) -> Pairs:
        idx = torch.as_tensor(rows, dtype=torch.long)
        return Pairs(
            self.base[idx], self.source[idx], self.clusters[rows], self.base_values[rows], self.source_values[rows]
        )

    def split(self, seed: int, test_size: float = 0.5) -> tuple[Pairs, Pairs]:
        """(train, test) with no cluster on both sides (scikit-learn's GroupShuffleSplit, seeded:
        :func:`~dt_circuits.analysis.stats.group_shuffle_split`)."""
        if len(np.unique(self.clusters)) < 2:
            raise ConfigError("a held-out split of pairs needs at least two clusters")
        train, test = group_shuffle_split(self.clusters, seed, test_size)
        return self.subset(train), self.subset(test)


def actions(model: DecisionTransformer, inputs: Inputs) -> torch.Tensor:
    """The model's greedy action per row."""
    return run(model, inputs).argmax(-1)


def interchange_logits(
    model: DecisionTransformer, pairs: Pairs, site: Site, basis: torch.Tensor, source_acts: torch.Tensor | None = None
) -> torch.Tensor:
    """Logits of each base run with its site activation set to the source's inside span(``basis``) (d × k,
    orthonormal columns). Differentiable in ``basis`` (no ``no_grad``)."""
    src = activations(model, pairs.source, site) if source_acts is None else source_acts

    def swap(h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(h.shape[0], -1)
        delta = (src.to(flat.dtype) - flat) @ basis @ basis.T
        return (flat + delta).reshape(h.shape)

    with hooked(model, [write_hook(site, swap)]):
        return model(*pairs.base.args)


def subspace_set_logits(
    model: DecisionTransformer, inputs: Inputs, site: Site, basis: torch.Tensor, value: torch.Tensor
) -> torch.Tensor:
    """Logits of ``inputs`` with the site's coordinates in span(``basis``) (d × k, orthonormal) set to ``value``
    (k,), the rest of the activation kept: ``h ← h + (value − h Q) Qᵀ``. Ablating a subspace to a reference
    value (e.g. its mean where the variable is absent) or steering along it, without autograd."""

    def set_coords(h: torch.Tensor) -> torch.Tensor:
        flat = h.reshape(h.shape[0], -1)
        q = basis.to(flat.dtype)
        return (flat + (value.to(flat.dtype) - flat @ q) @ q.T).reshape(h.shape)

    with torch.no_grad(), hooked(model, [write_hook(site, set_coords)]):
        return model(*inputs.args)


def interchange_correct(
    model: DecisionTransformer, pairs: Pairs, site: Site, basis: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """(per pair whose base and source actions differ: did the interchange give the source's action (bool), those
    pairs' row indices in ``pairs``). The per-example values IIA is the mean of; empty arrays when no pair's
    actions differ."""
    base_a, src_a = actions(model, pairs.base), actions(model, pairs.source)
    keep = torch.nonzero(base_a != src_a).ravel()
    if len(keep) == 0:
        return np.zeros(0, bool), np.zeros(0, np.int64)
    sub = pairs.subset(keep.numpy())
    with torch.no_grad():
        got = interchange_logits(model, sub, site, basis).argmax(-1)
    return (got == src_a[keep]).numpy(), keep.numpy()


def iia(model: DecisionTransformer, pairs: Pairs, site: Site, basis: torch.Tensor) -> tuple[float, int]:
    """(IIA over the pairs whose base and source actions differ, how many such pairs); NaN when there are none."""
    correct, _ = interchange_correct(model, pairs, site, basis)
    if len(correct) == 0:
        return float("nan"), 0
    return float(correct.mean()), int(len(correct))


@contextmanager
def _frozen(model: DecisionTransformer) -> Iterator[None]:
    """No gradients into the model's own weights while a rotation is trained (restored after)."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(f)


def das_basis(
    model: DecisionTransformer, pairs: Pairs, site: Site, k: int = 1, *, seed: int = 0, steps: int = STEPS
) -> torch.Tensor:
    """The d × k basis DAS learns on ``pairs``: the first k rows of an orthogonal rotation trained for ``steps``
    full-batch Adam steps (seeded)."""
    src = activations(model, pairs.source, site)
    d = src.shape[1]
    if not 1 <= k <= d:
        raise ConfigError(f"k must be in 1..{d} at {site}, got {k}")
    if steps < 1:
        raise ConfigError(f"DAS needs at least one optimisation step, got {steps}")
    target = actions(model, pairs.source)
    with _frozen(model):
        rows = fit_rotation(
            d, k, target, lambda w: interchange_logits(model, pairs, site, w.T, src), seed=seed, steps=steps, lr=LR
        )
    return rows.T.clone()


def fit_rotation(
    d: int,
    k: int,
    target: torch.Tensor,
    intervened_logits: Callable[[torch.Tensor], torch.Tensor],
    *,
    seed: int,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """DAS's optimisation: the first ``k`` rows (k × d) of a d × d orthogonal rotation (``torch.nn.utils.
    parametrizations.orthogonal``, seeded) trained for ``steps`` full-batch Adam steps on the cross-entropy between
    ``intervened_logits(rows)`` and ``target`` (the source runs' actions). The caller freezes the model."""
    torch.manual_seed(seed)
    rotation = torch.nn.utils.parametrizations.orthogonal(torch.nn.Linear(d, d, bias=False))
    opt = torch.optim.Adam(rotation.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(intervened_logits(rotation.weight[:k]), target).backward()
            opt.step()
    return rotation.weight[:k].detach().clone()


def best_neuron(model: DecisionTransformer, pairs: Pairs, site: Site) -> int:
    """The single basis dimension (neuron) whose interchange has the highest IIA on ``pairs``; the lowest index
    among ties."""
    d = activations(model, pairs.base[:1], site).shape[1]
    scores = [iia(model, pairs, site, torch.eye(d)[:, [j]])[0] for j in range(d)]
    return int(np.nanargmax(np.nan_to_num(scores, nan=-1.0)))
