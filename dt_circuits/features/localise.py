"""One variable at one site, localised by the same interchange on held-out pairs (MIB's comparison): DAS's
learned k-dim subspace, a linear probe's direction, the best single neuron, and (given an SAE of the site) the
SAE latent whose firing predicts the variable best, by its decoder direction. All are chosen on the training
pairs only; IIA is read on pairs of other poses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.features.das import STEPS, Pairs, best_neuron, das_basis, iia
from dt_circuits.features.probes import probe_direction
from dt_circuits.features.sae import TopKSAE, sae_basis
from dt_circuits.features.sites import Site, activations

if TYPE_CHECKING:
    from dt_circuits.analysis.interventions import Inputs


@dataclass(frozen=True)
class Localisation:
    """Held-out IIA of each method at one site (NaN where no test pair changes the model's action)."""

    site: str
    k: int
    das: float
    probe: float
    neuron: float
    neuron_index: int
    n_test_pairs: int
    #: the SAE latent's decoder direction (chosen by F1 on the training pairs), where an SAE was given
    sae: float | None = None
    sae_latent: int | None = None

    def to_json(self) -> dict[str, float | int | str]:
        return asdict(self)


#: the ways a subspace is found, each fitted on training pairs only
METHODS = ("das", "probe", "neuron", "sae")


def probe_basis(model: DecisionTransformer, train: Pairs, site: Site) -> torch.Tensor:
    """The probe's unit direction as a d × 1 basis; an empty basis (d × 0) where the activations carry no
    direction at all (constant at this site), so the interchange does nothing and scores 0."""
    x = torch.cat([activations(model, train.base, site), activations(model, train.source, site)]).numpy()
    y = np.concatenate([train.base_values, train.source_values])
    try:
        return torch.as_tensor(probe_direction(x, y), dtype=torch.float32)[:, None]
    except ConfigError:
        return torch.zeros(x.shape[1], 0)


def fit_basis(
    model: DecisionTransformer,
    train: Pairs,
    site: Site,
    method: str,
    *,
    k: int = 1,
    seed: int = 0,
    steps: int = STEPS,
    cache: bool = False,
) -> torch.Tensor:
    """The subspace ``method`` finds on the training pairs: DAS's learned k-dim basis, the probe's direction
    (k = 1), the best single neuron (k = 1) or an SAE latent's decoder direction (k = 1; the SAE trained on a
    seeded random walk plus the training pairs, the latent chosen by F1 on the training pairs' base side), as a
    d × k basis. ``cache``: DAS's basis is kept in the disk cache (:func:`cached_das_basis`), for claims that fit
    the same one every run; the table fits its own, so its seconds are a fit's."""
    if method == "das":
        if cache:
            return cached_das_basis(model, train, site, k, seed=seed, steps=steps)
        return das_basis(model, train, site, k, seed=seed, steps=steps)
    if k != 1:
        raise ConfigError(f"method {method!r} gives one direction (k = 1), got k = {k}")
    if method == "probe":
        return probe_basis(model, train, site)
    if method == "neuron":
        d = activations(model, train.base[:1], site).shape[1]
        return torch.eye(d)[:, [best_neuron(model, train, site)]]
    if method == "sae":
        return sae_fit(model, train, site, seed=seed)[2]
    raise ConfigError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def cached_das_basis(
    model: DecisionTransformer, train: Pairs, site: Site, k: int, *, seed: int, steps: int
) -> torch.Tensor:
    """:func:`~dt_circuits.features.das.das_basis` once per (weights, training pairs, site, k, seed, steps) on this
    machine (the key holds the CPU kind: float kernels decide the fit); later runs load the same basis."""
    import sys

    from dt_circuits.core.cache import cached_arrays, fit_key
    from dt_circuits.dt import layers
    from dt_circuits.dt.model import weights_digest
    from dt_circuits.features import das, sites

    pairs = das.inputs_digest(train.base, train.source, extra=(train.base_values, train.source_values))
    code = (das, sites, sys.modules[__name__], layers, DecisionTransformer)  # the fit and the forward it runs
    key = fit_key(*code, libraries=("numpy", "torch"), weights=weights_digest(model), pairs=pairs, site=str(site),
                  hook=site.hook, head=site.head, pos=site.pos, k=k, seed=seed, steps=steps)  # fmt: skip
    fit = cached_arrays("das-basis", key, lambda: {"basis": das_basis(model, train, site, k, seed=seed,
                                                                      steps=steps).numpy()})  # fmt: skip
    return torch.from_numpy(np.asarray(fit["basis"]))


def sae_fit(
    model: DecisionTransformer, train: Pairs, site: Site, *, seed: int = 0, own: Inputs | None = None
) -> tuple[TopKSAE, int, torch.Tensor]:
    """(the SAE, its latent for the pairs' variable, that latent's unit decoder direction as a d × 1 basis): the
    table's SAE shape trained on a seeded random walk plus the training pairs' states — and ``own``, states of the
    checkpoint's own rollouts, when given — the latent chosen by F1 on the training pairs' base side. Loaded from
    the SAEs shipped with the claims when one was trained exactly so (:mod:`dt_circuits.features.shipped_saes`, on
    either CPU kind), else trained and kept in the disk cache (:func:`dt_circuits.features.sae.cached_sae`)."""
    from dt_circuits.features import shipped_saes
    from dt_circuits.features.sae import site_sae, table_config, walk_inputs

    walk = walk_inputs(model, seed=seed)
    parts = [walk, train.base, train.source] + ([own] if own is not None else [])
    part_acts = [activations(model, x, site) for x in parts]
    base, acts = part_acts[1], torch.cat(part_acts)
    key = shipped_saes.identity(model, site, parts, table_config(acts.shape[1], seed))
    sae = shipped_saes.shipped_sae(key)
    if sae is None:
        sae, _ = site_sae(model, site, acts, seed=seed, cache=True)
        mine = f" + {len(own)} of the checkpoint's own states" if own is not None else ""
        shipped_saes.record(key, sae, model, f"a seeded {len(walk)}-step random walk (seed {seed}) + {len(train)} "
                                      f"training pairs' base and source states{mine}")  # fmt: skip
    basis, latent = sae_basis(sae, base, train.base_values)
    return sae, latent, basis


def localise(
    model: DecisionTransformer,
    pairs: Pairs,
    site: Site,
    *,
    k: int = 1,
    seed: int = 0,
    sae: TopKSAE | None = None,
    latent_target: int = 1,
) -> Localisation:
    """DAS, probe and neuron IIA of ``pairs``' variable at ``site`` on a held-out half of the poses (seeded); and
    the ``sae``'s latent for it (its decoder direction; the latent whose firing best predicts the value
    ``latent_target`` on the training pairs) when an SAE of this site is given."""
    site.check(model)
    train, test = pairs.split(seed)
    das, n_test = iia(model, test, site, das_basis(model, train, site, k, seed=seed))
    probe, _ = iia(model, test, site, probe_basis(model, train, site))
    j = best_neuron(model, train, site)
    d = activations(model, test.base[:1], site).shape[1]
    neuron, _ = iia(model, test, site, torch.eye(d)[:, [j]])
    sae_iia, latent = None, None
    if sae is not None:
        basis, latent = sae_basis(sae, activations(model, train.base, site), train.base_values, latent_target)
        sae_iia, _ = iia(model, test, site, basis)
    return Localisation(str(site), k, das, probe, neuron, j, n_test, sae_iia, latent)
