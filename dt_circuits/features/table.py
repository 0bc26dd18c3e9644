"""The localisation table of a checkpoint: every variable × site by probe (accuracy, majority, selectivity), and
ball-in-front × site by interchange (IIA of DAS, the probe's direction, the best neuron), as JSON-ready rows.

The ``input`` site is what the model reads before any weight: its encoded observation (raw indices or one-hot
bits) with the RTG and timestep, so "decodable at a site but not from the input" means the model computed it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from dt_circuits.analysis.interventions import pos_axis
from dt_circuits.analysis.stats import group_shuffle_split
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.progress import progress as progress_reporter
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import FRONT_VIEW_CELL
from dt_circuits.features.data import INTERCHANGED, PAIR_RTG, check_interchanged, probe_set
from dt_circuits.features.localise import localise
from dt_circuits.features.probes import probe
from dt_circuits.features.sites import Site, activations, parse_site
from dt_circuits.features.variables import MEMORY_VARIABLES, memory_variable, variable

INPUT = "input"
#: the front cell alone, as the model encodes it (3 raw indices, or its one-hot bits): the hand-checked fact that a
#: ball is not linearly separable there in raw-index encoding, measured
INPUT_FRONT = "input (front cell)"
#: the variables probed (ball_in_front and rtg_sign are also localised by interchange: data.INTERCHANGED)
PROBED = ("ball_in_front", "front_object", "ball_within_2", "goal_visible", "goal_side", "rtg_sign")


def state_token(model: DecisionTransformer) -> int:
    """The token the action is read at: the state token of a one-timestep model, the last one of a window."""
    return 3 * model.cfg.n_timesteps - 2


def default_sites(model: DecisionTransformer) -> list[Site]:
    """Per layer, at the (last) state token: the residual before the heads, each head's output (hook_z), the
    residual after the heads, the MLP's neurons, the residual after the MLP."""
    names = []
    for layer in range(model.cfg.n_layers):
        names.append(f"blocks.{layer}.hook_resid_pre")
        names += [f"L{layer}H{h}" for h in range(model.cfg.n_heads)]
        names += [f"blocks.{layer}.{name}" for name in ("hook_resid_mid", "mlp.hook_post", "hook_resid_post")]
    return [at_state_token(model, parse_site(model, name)) for name in names]


def at_state_token(model: DecisionTransformer, site: Site) -> Site:
    """``site`` moved to the token the action is read at (a window model's last state token)."""
    return replace(site, pos=state_token(model)) if pos_axis(site.hook) is not None else site


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


def probe_features(model: DecisionTransformer, inputs: Any, sites: Sequence[Site]) -> dict[str, np.ndarray]:
    """What the probes read, by site name: the encoded input, the front cell's columns, and each site's vectors."""
    xs = {INPUT: input_features(model, inputs), INPUT_FRONT: front_cell_features(model, inputs)}
    xs.update({str(s): activations(model, inputs, s).numpy() for s in sites})
    return xs


def probe_rows(
    xs: dict[str, np.ndarray], data: Any, variables: Sequence[str], seed: int, *, workers: int | None = None
) -> list[dict[str, Any]]:
    """One row per variable and site: the probe's held-out accuracy, majority, control and selectivity. ``data``
    is a probe set (labels, clusters by pose or episode, control-task types).

    Each (variable, site) is ten logistic regressions (five folds, probe and control) fitted on one thread, the
    same numbers wherever they run; on the agent's ~17,000 own states they are minutes of work. So they are shared
    out over ``workers`` forked processes (default: every core) where the platform forks, rows in the same order."""
    from dt_circuits.evaluation.pool import fork_map

    labels = {name: data.labels(name) for name in variables}
    tasks = [(name, where) for name in variables for where in xs]
    results = fork_map(_probe_job, tasks, (xs, labels, data.clusters, data.types, seed), workers)
    return [{"variable": name, "site": where, **result} for (name, where), result in zip(tasks, results, strict=True)]


def _probe_job(shared: tuple, task: tuple[str, str]) -> dict[str, Any]:
    xs, labels, clusters, types, seed = shared
    name, where = task
    return probe(xs[where], labels[name], clusters, types, seed=seed).to_json()


def localisation_table(
    model: DecisionTransformer,
    *,
    seed: int = 0,
    n_random: int = 400,
    layouts: int = 2,
    k: int = 1,
    variables: Sequence[str] = PROBED,
    sites: Sequence[str] | None = None,
    with_sae: bool = True,
    progress: bool = False,
    on_policy: Any | None = None,
    interchanged: Sequence[str] = tuple(INTERCHANGED),
) -> dict[str, Any]:
    """Probe rows for ``variables``, an SAE per site (``with_sae``) and interchange rows (each of ``interchanged``:
    a ball in front, the RTG's sign; DAS, probe, neuron and the SAE's latent) at ``sites`` (default: every default
    site) and the input, seeded; with timings.
    ``progress``: a bar on a terminal, a line now and then elsewhere (1–2 minutes of work). ``on_policy``: the
    checkpoint's own rollout states (a :class:`~dt_circuits.features.data.ViewProbeSet`, clustered by episode):
    probe rows on them too, for every variable the view can tell (:func:`on_policy_rows`)."""
    t0 = time.perf_counter()
    for name in variables:
        variable(name)  # unknown names fail before any work
    check_interchanged(interchanged)
    if model.cfg.n_timesteps > 1:
        raise ConfigError("a window model (MemoryDT) has its own table: memory_localisation_table")
    chosen = default_sites(model) if sites is None else [parse_site(model, s) for s in sites]
    data = probe_set(seed=seed, n_random=n_random, max_timestep=model.cfg.max_timestep)
    xs = probe_features(model, data.inputs, chosen)
    steps = 1 + (len(chosen) if with_sae else 0) + len(chosen) * len(interchanged) + (on_policy is not None)
    bar = progress_reporter(steps, "features", "steps", enabled=progress)
    probes = probe_rows(xs, data, variables, seed)
    bar.update(1)
    t1 = time.perf_counter()
    on_xs = probe_features(model, on_policy.inputs, chosen) if on_policy is not None else None
    on = (on_policy, on_xs) if on_policy is not None else None
    saes, sae_rows = site_saes(model, data, chosen, variables, seed, xs, on_policy=on) if with_sae else ({}, [])
    bar.update(len(chosen) if with_sae else 0)
    t_sae = time.perf_counter()
    iia, n_pairs = [], {}
    for name in interchanged:
        how = INTERCHANGED[name]
        pairs = how.pairs(seed=seed, layouts=layouts, max_timestep=model.cfg.max_timestep)
        n_pairs[name] = len(pairs)
        target = variable(name).values.index(how.latent_value)
        for s in chosen:
            found = localise(model, pairs, s, k=k, seed=seed, sae=saes.get(str(s)), latent_target=target)
            iia.append({"variable": name, **found.to_json()})
            bar.update(1)
    t2 = time.perf_counter()
    extra = on_policy_rows(model, on_policy, chosen, variables, seed, xs=on_xs) if on_policy is not None else {}
    bar.update(on_policy is not None)
    bar.close()
    seconds = {"probes": round(t1 - t0, 1), "sae": round(t_sae - t1, 1), "interchange": round(t2 - t_sae, 1)}
    if on_policy is not None:
        seconds["on_policy_probes"] = round(time.perf_counter() - t2, 1)
    return {
        "seed": seed,
        "n_states": len(data.states),
        "n_poses": int(len(np.unique(data.clusters))),
        "n_pairs": n_pairs.get("ball_in_front", 0),
        "pair_rtg": PAIR_RTG,
        "interchange": {
            name: {
                "n_pairs": n,
                "pairs": INTERCHANGED[name].described,
                "latent": f"{name}={INTERCHANGED[name].latent_value}",
            }
            for name, n in n_pairs.items()
        },
        "variables": {name: list(variable(name).values) for name in variables},
        "sites": [INPUT, INPUT_FRONT] + [str(s) for s in chosen],
        "probes": probes,
        "sae": sae_rows,
        "iia": iia,
        "seconds": seconds,
        **extra,
    }


def on_policy_rows(
    model: DecisionTransformer,
    data: Any,
    sites: Sequence[Site],
    variables: Sequence[str],
    seed: int,
    *,
    xs: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Probe rows on the checkpoint's own states (``data``: a view probe set, clusters are episodes) for each of
    ``variables`` the view can tell, at the input and ``sites``: is what a probe reads on generated states also
    read where the agent actually goes? ``xs``: the states' features by site, when already computed."""
    readable = [v for v in variables if variable(v).from_view is not None]
    xs = probe_features(model, data.inputs, sites) if xs is None else xs
    return {
        "on_policy": {
            "n_states": len(data.inputs),
            "n_episodes": int(len(np.unique(data.clusters))),
            "variables": readable,
            "probes": probe_rows(xs, data, readable, seed),
        }
    }


def site_saes(
    model: DecisionTransformer,
    data: Any,
    sites: Sequence[Site],
    variables: Sequence[str],
    seed: int,
    probe_xs: dict[str, np.ndarray],
    *,
    on_policy: tuple[Any, dict[str, np.ndarray]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An SAE per site, trained on a seeded random walk's states plus half of the probe set's poses; its quality
    and latent labels read on the other half (``features.sae``). ``probe_xs``: the probe set's activations by site
    name, as the probes read them. ``on_policy``: the checkpoint's own states (a view probe set) and their
    activations by site: a seeded sample of at most :data:`~dt_circuits.features.sae.ON_POLICY_SAE_STATES`
    states of half the episodes joins the training data, and the row also reads the SAE on the other half's states
    (``on_policy``: FVU, L0, dead latents, and the F1 there of each latent chosen on the generated states, for the
    variables the view can tell). Returns (SAE by site name, JSON rows)."""
    from dt_circuits.features.sae import own_rows, sae_row, site_sae, walk_inputs

    train, test = group_shuffle_split(data.clusters, seed)  # half of the episodes each, none in both
    names = {v: np.array(variable(v).values)[data.labels(v)] for v in variables}
    train_values = {v: x[train] for v, x in names.items()}
    test_values = {v: x[test] for v, x in names.items()}
    walk = walk_inputs(model, seed=seed)
    test_inputs = data.inputs[torch.as_tensor(test)]
    if on_policy is not None:
        on_data, on_xs = on_policy
        on_train, on_test = group_shuffle_split(on_data.clusters, seed)
        on_train = own_rows(on_train, seed)
        readable = [v for v in variables if variable(v).from_view is not None]
        on_values = {v: np.array(variable(v).values)[on_data.labels(v)][on_test] for v in readable}
    saes, rows = {}, []
    for site in sites:
        probe_acts = torch.from_numpy(probe_xs[str(site)])
        parts = [activations(model, walk, site), probe_acts[train]]
        if on_policy is not None:
            parts.append(torch.from_numpy(on_xs[str(site)][on_train]))
        sae, seconds = site_sae(model, site, torch.cat(parts), seed=seed)
        saes[str(site)] = sae
        row = sae_row(model, site, sae, seconds, test_inputs, probe_acts[train], probe_acts[test], train_values,
                      test_values)  # fmt: skip
        if on_policy is not None:
            row["on_policy"] = _on_policy_sae(sae, row, torch.from_numpy(on_xs[str(site)][on_test]), on_values)
            row["on_policy"]["n_train"], row["on_policy"]["n_test"] = len(on_train), len(on_test)
        rows.append(row)
    return saes, rows


def _on_policy_sae(sae: Any, row: dict[str, Any], acts: torch.Tensor, values: dict[str, np.ndarray]) -> dict:
    """The SAE read on held-out on-policy states: quality, and each latent the row chose (on generated states)
    for a variable the view can tell, with its F1 there."""
    from dt_circuits.features.sae import latent_f1, sae_metrics

    f1 = latent_f1(sae, acts, {name: pick["latent"] for name, pick in row["f1"].items()}, values)
    return {**{k: round(v, 4) for k, v in sae_metrics(sae, acts).items()}, "f1": f1}


#: a window model's input sites: the current frame as the model encodes it, and the whole window (every frame,
#: RTG and timestep): the instruction is in the window's input only while its first frame is
INPUT_FRAME, INPUT_WINDOW = "input (current frame)", "input (window)"
#: the Memory variables probed
MEMORY_PROBED = tuple(MEMORY_VARIABLES)
#: where the instruction is localised by interchange on MemoryDT: the head and the residual its probes point at
#: (a site costs 200-260 s with 300 DAS steps on these windows: every site would be ~1 h, so two)
MEMORY_IIA_SITES = ("L0H1", "blocks.0.hook_resid_mid")


def memory_input_features(model: DecisionTransformer, windows: Any) -> dict[str, np.ndarray]:
    """The two input sites of a window model: the last frame encoded, and every frame encoded with RTG and time."""
    b, t = windows.obs.shape[:2]
    with torch.no_grad():
        frames = model.encode_obs(windows.obs.reshape(b * t, *windows.obs.shape[2:])).view(b, t, -1)
    extra = torch.cat([windows.rtg.float(), windows.timestep.float()], dim=1)
    return {
        INPUT_FRAME: frames[:, -1].numpy(),
        INPUT_WINDOW: torch.cat([frames.reshape(b, -1), extra], dim=1).numpy(),
    }


def memory_localisation_table(
    model: DecisionTransformer,
    *,
    seed: int = 0,
    n_episodes: int = 48,
    variables: Sequence[str] = MEMORY_PROBED,
    sites: Sequence[str] | None = None,
    iia_sites: Sequence[str] = MEMORY_IIA_SITES,
    k: int = 1,
    with_sae: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Probe rows for Memory ``variables`` at ``sites`` (default: every default site, at the last state token)
    and the two input sites, on :func:`memory_probe_set`'s windows; and the instruction localised by interchange
    (DAS, the probe's direction, the best neuron) at ``iia_sites``, on pairs of the same step of the same episode
    with the instruction swapped, held out by episode; and an SAE per site (``with_sae``), its latent for "the
    instruction is a ball" localised beside them at the interchange sites."""
    from dt_circuits.features.memory_data import MAX_STEPS, RTG, instruction_pairs, memory_probe_set

    t0 = time.perf_counter()
    if model.cfg.n_timesteps == 1:
        raise ConfigError("a one-timestep model is measured by localisation_table (Dynamic Obstacles)")
    for name in variables:
        memory_variable(name)  # unknown names fail before any work
    chosen = default_sites(model) if sites is None else [at_state_token(model, parse_site(model, s)) for s in sites]
    data = memory_probe_set(model, seed=seed, n_episodes=n_episodes)
    xs = memory_input_features(model, data.windows)
    xs.update({str(s): activations(model, data.windows, s).numpy() for s in chosen})
    n_iia, n_sae = len(iia_sites), len(chosen) if with_sae else 0
    bar = progress_reporter(1 + n_sae + n_iia, "features", "steps", enabled=progress)
    probes = probe_rows(xs, data, variables, seed)
    bar.update(1)
    t1 = time.perf_counter()
    pairs = instruction_pairs(model, seed=seed, n_episodes=n_episodes)
    localised = [at_state_token(model, parse_site(model, s)) for s in iia_sites]
    saes, sae_rows = memory_site_saes(model, data, pairs, chosen, variables, seed, xs) if with_sae else ({}, [])
    bar.update(n_sae)
    t_sae = time.perf_counter()
    iia = []
    for s in localised:  # 200-260 s a site on MemoryDT
        iia.append({"variable": "instruction",
                    **localise(model, pairs, s, k=k, seed=seed, sae=saes.get(str(s))).to_json()})  # fmt: skip
        bar.update(1)
    bar.close()
    return {
        "env": "memory",
        "seed": seed,
        "n_states": len(data.steps),
        "n_episodes": int(len(np.unique(data.clusters))),
        "max_steps": MAX_STEPS,
        "rtg": RTG,
        "token": state_token(model),
        "variables": {name: list(memory_variable(name).values) for name in variables},
        "sites": [*xs],
        "probes": probes,
        "n_pairs": len(pairs),
        "sae": sae_rows,
        "sae_latent": "instruction=ball",
        "iia": iia,
        "seconds": {
            "probes": round(t1 - t0, 1),
            "sae": round(t_sae - t1, 1),
            "interchange": round(time.perf_counter() - t_sae, 1),
        },  # fmt: skip
    }


def memory_site_saes(
    model: DecisionTransformer,
    data: Any,
    pairs: Any,
    sites: Sequence[Site],
    variables: Sequence[str],
    seed: int,
    probe_xs: dict[str, np.ndarray],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An SAE per site of a window model, trained on the windows of half of the episodes (each step as played and
    with the instruction swapped: the pairs' base side), its quality and latent labels read on the other half's
    windows as played (``features.sae``); ``probe_xs``: the probes' activations by site, reused where a site has
    them. The same episode split as the interchange's, so the SAE latent
    localised there was never trained on a held-out episode."""
    from dt_circuits.features.sae import sae_row, site_sae

    train_pairs, _ = pairs.split(seed)
    held_out = ~np.isin(data.clusters, np.unique(train_pairs.clusters))
    train, test = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    names = {v: np.array(memory_variable(v).values)[data.labels(v)] for v in variables}
    train_values = {v: x[train] for v, x in names.items()}
    test_values = {v: x[test] for v, x in names.items()}
    test_windows = data.windows[torch.as_tensor(test)]
    saes, rows = {}, []
    for site in sites:
        acts = (
            torch.from_numpy(probe_xs[str(site)]) if str(site) in probe_xs else activations(model, data.windows, site)
        )
        train_acts = activations(model, train_pairs.base, site)
        sae, seconds = site_sae(model, site, train_acts, seed=seed)
        saes[str(site)] = sae
        rows.append(sae_row(model, site, sae, seconds, test_windows, acts[train], acts[test], train_values,
                            test_values))  # fmt: skip
    return saes, rows
