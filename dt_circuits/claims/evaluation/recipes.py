"""Ablation recipes: what value an ablated component carries instead of its own, and how that value's noise is
carried into a check's interval.

Every ablation check is measured under every recipe; the claim names its primary one, whose result is the verdict.

- ``zero``: the activation becomes 0.
- ``mean``: the dataset mean at the claim's own RTG, over a seeded random walk in the real env.
- ``mean-rtg-mix``: the dataset mean over the same walk queried at each RTG of ``RTG_MIX`` (equal weight); the
  mixture is stated in the recipe's description and in the JSON.
- ``resample``: another visited state's activation (a seeded donor from the walk at the claim's RTG, one per row).
- ``dti-dhead-mean``: DTI's app recipe, for the record: a head's output is replaced by its mean over ``d_head``
  (an MLP's by its mean over neurons) in the same forward pass; not an ablation to a typical value.
- ``counterfactual``: activation patching from the paired state (an interchange intervention): the component's
  output is the one it has on the same state with the object in front removed
  (:func:`~dt_circuits.claims.evaluation.samples.without_front_object`), same RTG and timestep. It asks whether
  the component carries *the information* "there is an object in front" that the behaviour responds to, which no
  ablation to a typical value asks; it exists only on families that put an object in front. Patched at every
  position: positions before the state token cannot see the edit, so this is the patch at the state token.

A recipe can be *uninformative* on an object family: where its replacement value, put into the states with the
object removed, already moves the behaviour as the object does (``READS_AS_OBJECT``), ablating to it cannot take
the object's information away. A check that should undo the object's effect and fails under such a recipe is
reported as uninformative under it (the auditing game found the zero recipe reading as "ball" on 6 of 12 planted
heads, each a miss).

The two dataset-mean recipes also carry the mean's own noise: besides the mean of the whole walk they give
``MEAN_VARIANTS`` means of walks resampled by episode, so the cluster bootstrap draws from them as well.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

from dt_circuits.analysis.interventions import (
    Component,
    FwdHooks,
    Inputs,
    collect_activations,
    component_names,
    replace_hook,
    variants_hook,
)
from dt_circuits.analysis.interventions import donor_indices as _donor_indices
from dt_circuits.claims.evaluation.subject import Subject, mean_walk
from dt_circuits.core.errors import ConfigError

RECIPES = ("zero", "mean", "mean-rtg-mix", "resample", "dti-dhead-mean", "counterfactual")
#: the recipes that need a paired counterfactual state (reported only where the family has one)
PAIRED_RECIPES = ("counterfactual",)
#: the RTG mixture of ``mean-rtg-mix``: the post's three critical points, equal weight
RTG_MIX = (-1.0, 0.0, 0.9)
#: resampled walks behind each dataset-mean recipe (besides the whole walk)
MEAN_VARIANTS = 8
#: walk states kept as resample donors
RESAMPLE_DONORS = 4096
#: a replacement that reproduces at least this share of the object's effect on the object-removed states reads
#: more as the object than as its absence (the midpoint): a check that fails under it is *uninformative* there,
#: not evidence against the claim (``Ablation.replacement_reading``; issue 28, docs/audit.md)
READS_AS_OBJECT = 0.5

DESCRIBE = {
    "zero": "zero ablation",
    "mean": "dataset mean at the claim's RTG",
    "mean-rtg-mix": "dataset mean over RTGs " + ", ".join(f"{r:g}" for r in RTG_MIX) + " (equal weight)",
    "resample": "resample ablation: a seeded donor state from the walk at the claim's RTG, per row",
    "dti-dhead-mean": "DTI app recipe: mean over d_head (MLP: over neurons) in the same pass",
    "counterfactual": "activation patching from the same state with the object in front removed",
}


def uninformative(check: Any, holds: bool, reading: float | None, object_effect: float | None) -> bool:
    """Whether a check's failure under a recipe says nothing about the claim: the check is not a control; it asks
    the ablation to undo the object's effect (its one-sided bound points from the object's level toward the
    object-removed level, and the object moves the metric at least as far as the bound asks); and the recipe's
    replacement reads as the object (``reading >= READS_AS_OBJECT``). ``object_effect``: mean metric with the
    object minus without it."""
    if holds or check.control or reading is None or not object_effect:
        return False
    if (check.at_least is None) == (check.at_most is None):  # two-sided or unbounded: no direction to undo
        return False
    bound = check.at_least if check.at_least is not None else check.at_most
    undo = -1.0 if object_effect > 0 else 1.0  # removing the object moves the metric this way
    wants = 1.0 if check.at_least is not None else -1.0
    return wants == undo and abs(object_effect) >= abs(bound) and reading >= READS_AS_OBJECT


def check_recipe(name: str) -> str:
    if name not in RECIPES:
        raise ConfigError(f"unknown ablation recipe {name!r}; expected one of {', '.join(RECIPES)}")
    return name


def _walk_stats(subject: Subject, rtg: float) -> dict[str, Any]:
    """Per-episode activation sums of the walk at ``rtg`` (every component's hook) and a donor subset (cached)."""
    key = ("walk-stats", float(rtg))
    if key not in subject._cache:
        walk = mean_walk(subject.generation_seed)
        data = Inputs.make(walk.obs, np.full(len(walk.obs), rtg, np.float32), walk.timesteps)
        store = collect_activations(subject.model, data, component_names(subject.model))
        episode = np.cumsum(walk.timesteps == 0) - 1
        n_eps = int(episode.max()) + 1
        index = torch.as_tensor(episode)
        sums = {}
        for name, acts in store.acts.items():
            total = torch.zeros((n_eps, *acts.shape[1:]), dtype=torch.float64)
            sums[name] = total.index_add_(0, index, acts.to(torch.float64))
        rng = np.random.default_rng(subject.seed_key(17, int(zlib.crc32(f"{rtg:g}".encode()))))
        donors = np.sort(rng.choice(len(data), size=min(RESAMPLE_DONORS, len(data)), replace=False))
        subject._cache[key] = {
            "sums": sums,
            "lengths": torch.as_tensor(np.bincount(episode, minlength=n_eps), dtype=torch.float64),
            "donors": {name: acts[donors].clone() for name, acts in store.acts.items()},
        }
    return subject._cache[key]


def _episode_weights(subject: Subject, n_episodes: int) -> torch.Tensor:
    """(1 + MEAN_VARIANTS, episodes) weights: the whole walk, then walks resampled by episode (seeded)."""
    key = ("walk-weights", n_episodes)
    if key not in subject._cache:
        rng = np.random.default_rng(subject.seed_key(19))
        picks = rng.integers(n_episodes, size=(MEAN_VARIANTS, n_episodes))
        counts = np.stack([np.bincount(p, minlength=n_episodes) for p in picks])
        subject._cache[key] = torch.as_tensor(np.vstack([np.ones(n_episodes), counts]), dtype=torch.float64)
    return subject._cache[key]


def mean_variants(subject: Subject, hook_name: str, rtgs: tuple[float, ...]) -> torch.Tensor:
    """(1 + MEAN_VARIANTS, *activation shape) dataset means at ``hook_name``, averaged over ``rtgs``."""
    key = ("mean-variants", hook_name, tuple(float(r) for r in rtgs))
    if key not in subject._cache:
        parts = []
        for rtg in rtgs:
            stats = _walk_stats(subject, rtg)
            sums, lengths = stats["sums"][hook_name], stats["lengths"]
            w = _episode_weights(subject, len(lengths))
            parts.append(torch.tensordot(w, sums, dims=1) / (w @ lengths).reshape(-1, *[1] * (sums.ndim - 1)))
        subject._cache[key] = torch.stack(parts).mean(0).to(torch.float32)
    return subject._cache[key]


def recipe_hooks(
    subject: Subject,
    comps: list[Component],
    recipe: str,
    rtg: float,
    n_rows: int,
    seed: int = 0,
    *,
    point: bool = False,
    paired: Inputs | None = None,
) -> tuple[FwdHooks, int]:
    """(hooks, variants): hooks for ``n_rows`` inputs that widen the batch to ``variants`` block-wise copies at the
    hook, copy j ablated with the recipe's j-th value (variant 0 the point estimate; ``point`` gives that one only;
    inputs already tiled ``variants`` times, ``Inputs.repeat``, give the same numbers).
    ``paired``: the rows' counterfactual states, one per row (the ``counterfactual`` recipe needs them)."""
    check_recipe(recipe)
    hooks: FwdHooks = []
    variants = 1
    if recipe in PAIRED_RECIPES:
        if paired is None or len(paired) != n_rows:
            raise ConfigError(f"the {recipe} recipe needs one paired state per row ({n_rows}); the family has none")
        store = collect_activations(subject.model, paired, comps)
    for comp in comps:
        name = comp.hook_name
        if recipe == "zero":
            fn = replace_hook(comp, None, torch.zeros_like)
        elif recipe in ("mean", "mean-rtg-mix"):
            means = mean_variants(subject, name, (rtg,) if recipe == "mean" else RTG_MIX)
            means = means[:1] if point else means
            variants = means.shape[0]
            fn = variants_hook(comp, means, n_rows)
        elif recipe == "resample":
            donors = _walk_stats(subject, rtg)["donors"][name]
            idx = torch.as_tensor(_donor_indices(n_rows, seed, int(donors.shape[0])))
            picked = donors[idx]
            fn = replace_hook(comp, None, lambda act, picked=picked: picked)
        elif recipe == "counterfactual":
            fn = replace_hook(comp, None, lambda act, patched=store.acts[name]: patched)
        else:  # dti-dhead-mean
            fn = replace_hook(comp, None, lambda act: act.mean(dim=-1, keepdim=True))
        hooks.append((name, fn))
    return hooks, variants
