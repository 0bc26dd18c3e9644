"""The localisation table of a checkpoint: every variable × site by probe (accuracy, majority, selectivity), and
ball-in-front × site by interchange (IIA of DAS, the probe's direction, the best neuron), as JSON-ready rows.

The ``input`` site is what the model reads before any weight: its encoded observation (raw indices or one-hot
bits) with the RTG and timestep, so "decodable at a site but not from the input" means the model computed it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import FRONT_VIEW_CELL
from dt_circuits.features.data import ball_pairs, probe_set
from dt_circuits.features.localise import localise
from dt_circuits.features.probes import probe
from dt_circuits.features.sites import Site, activations, parse_site
from dt_circuits.features.variables import variable

INPUT = "input"
#: the front cell alone, as the model encodes it (3 raw indices, or its one-hot bits): the hand-checked fact that a
#: ball is not linearly separable there in raw-index encoding, measured
INPUT_FRONT = "input (front cell)"
#: the variables probed (ball_in_front is also the one localised by interchange)
PROBED = ("ball_in_front", "front_object", "ball_within_2", "goal_visible", "goal_side", "rtg_sign")
#: the RTG the ball-in-front pairs are taken at (the post's obstacle-avoidance RTG)
PAIR_RTG = 0.9


def default_sites(model: DecisionTransformer) -> list[Site]:
    """Per layer, at the state token: the residual before the heads, each head's output (hook_z), the residual
    after the heads, the MLP's neurons, the residual after the MLP."""
    sites = []
    for layer in range(model.cfg.n_layers):
        sites.append(parse_site(model, f"blocks.{layer}.hook_resid_pre"))
        sites += [parse_site(model, f"L{layer}H{h}") for h in range(model.cfg.n_heads)]
        for name in ("hook_resid_mid", "mlp.hook_post", "hook_resid_post"):
            sites.append(parse_site(model, f"blocks.{layer}.{name}"))
    return sites


def input_features(model: DecisionTransformer, inputs: Any) -> np.ndarray:
    """The ``input`` site: the encoded observation as the model reads it, with the RTG and timestep."""
    with torch.no_grad():
        obs = model.encode_obs(inputs.obs)
    extra = torch.stack([inputs.rtg.float(), inputs.timestep.float()], dim=1)
    return torch.cat([obs, extra], dim=1).numpy()


def front_cell_features(model: DecisionTransformer, inputs: Any) -> np.ndarray:
    """The ``input (front cell)`` site: the encoded columns the front cell moves, with every other cell empty."""
    fx, fy = FRONT_VIEW_CELL
    front = torch.zeros_like(inputs.obs)
    front[:, fx, fy] = inputs.obs[:, fx, fy]
    with torch.no_grad():
        x = model.encode_obs(front).numpy()
    x_other = model.encode_obs(torch.zeros_like(inputs.obs[:1])).numpy()
    return x[:, np.flatnonzero(np.any(x != x_other, axis=0))]  # the columns the front cell moves


def localisation_table(
    model: DecisionTransformer,
    *,
    seed: int = 0,
    n_random: int = 400,
    layouts: int = 2,
    k: int = 1,
    variables: Sequence[str] = PROBED,
    sites: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Probe rows for ``variables`` and interchange rows (ball in front) at ``sites`` (default: every default site)
    and the input, seeded; with timings."""
    t0 = time.perf_counter()
    for name in variables:
        variable(name)  # unknown names fail before any work
    chosen = default_sites(model) if sites is None else [parse_site(model, s) for s in sites]
    data = probe_set(seed=seed, n_random=n_random, max_timestep=model.cfg.max_timestep)
    xs = {INPUT: input_features(model, data.inputs), INPUT_FRONT: front_cell_features(model, data.inputs)}
    xs.update({str(s): activations(model, data.inputs, s).numpy() for s in chosen})
    probes = []
    for name in variables:
        y = data.labels(name)
        for where, x in xs.items():
            result = probe(x, y, data.clusters, data.types, seed=seed)
            probes.append({"variable": name, "site": where, **result.to_json()})
    t1 = time.perf_counter()
    pairs = ball_pairs(seed=seed, layouts=layouts, rtg=PAIR_RTG, max_timestep=model.cfg.max_timestep)
    iia = [{"variable": "ball_in_front", **localise(model, pairs, s, k=k, seed=seed).to_json()} for s in chosen]
    t2 = time.perf_counter()
    return {
        "seed": seed,
        "n_states": len(data.states),
        "n_poses": int(len(np.unique(data.clusters))),
        "n_pairs": len(pairs),
        "pair_rtg": PAIR_RTG,
        "variables": {name: list(variable(name).values) for name in variables},
        "sites": [INPUT, INPUT_FRONT] + [str(s) for s in chosen],
        "probes": probes,
        "iia": iia,
        "seconds": {"probes": round(t1 - t0, 1), "interchange": round(t2 - t1, 1)},
    }
