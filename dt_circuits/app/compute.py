"""Every number the page shows, from the library's own functions on the state shown: action probabilities
(``interventions.run``), the claims' ablation recipes (``claims.evaluation.recipes`` and ``metrics``), direct logit
attribution (``attribution``), path patching of the RTG (``patching``), QK/OV (``circuits``), attention, and the
MemoryDT context window (``dt.window``). Nothing here re-implements a measurement; it only picks inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.attribution import attribute, attribution_table, prob_metric
from dt_circuits.analysis.circuits import ov_view, qk_view, rtg_ov
from dt_circuits.analysis.interventions import (
    Head,
    Inputs,
    ablation_hooks,
    component_names,
    hooked,
    parse_component,
    run,
)
from dt_circuits.analysis.patching import path_patching
from dt_circuits.app.view import NO_INTERVENTION, View
from dt_circuits.claims.evaluation import recipes as recipe_lib
from dt_circuits.claims.evaluation.metrics import metric_values
from dt_circuits.claims.evaluation.samples import front_cleared
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.dt.window import pad_window, stack_windows
from dt_circuits.env.scenarios import GridState, StateRenderer, validate_state
from dt_circuits.env.spec import ACTION_NAMES, FRONT_VIEW_CELL, OBJECT, EnvSpec

#: view objects whose removal from the front cell is the counterfactual recipe's paired state
FRONT_OBJECTS = {OBJECT["ball"]: "ball", OBJECT["goal"]: "goal", OBJECT["wall"]: "wall"}


@dataclass
class Loaded:
    """A checkpoint as the page uses it: the model, its claims Subject (roles and the recipes' cached means), its
    env, and a renderer through the real env."""

    path: str
    model: DecisionTransformer
    subject: Subject
    spec: EnvSpec
    renderer: StateRenderer | None

    @property
    def family(self) -> str:
        return self.subject.env_family

    @property
    def memory(self) -> bool:
        return self.model.cfg.n_timesteps > 1

    @property
    def actions(self) -> tuple[str, ...]:
        if self.model.cfg.n_actions == len(ACTION_NAMES):
            return ACTION_NAMES
        from dt_circuits.env.memory import ACTIONS

        return ACTIONS[: self.model.cfg.n_actions]


def load(path: str) -> Loaded:
    """Load a checkpoint (CheckpointError, one line, on a bad file) with its Subject as the claims bind it."""
    model = load_checkpoint(path)
    subject = Subject.from_model(model)
    spec = model.checkpoint_info.env
    renderer = StateRenderer(spec) if subject.env_family == "dynamic-obstacles" else None
    return Loaded(path, model, subject, spec, renderer)


# -- the state shown ------------------------------------------------------------------------------------------


def grid_state(view: View) -> GridState:
    """The view's Dynamic Obstacles state (InvalidStateError, one line, when it cannot exist in the env)."""
    if view.agent is None:
        raise ConfigError("the view has no agent pose")
    x, y, d = view.agent
    state = GridState((x, y), d, tuple(view.obstacles))
    validate_state(state)
    return state


def observation(loaded: Loaded, view: View) -> np.ndarray:
    """The observation the real env renders in the view's state, with the view's cell edits applied."""
    from dt_circuits.app.images import apply_edits

    assert loaded.renderer is not None
    return apply_edits(loaded.renderer.render(grid_state(view)), view.edits)


def inputs(loaded: Loaded, view: View) -> Inputs:
    return Inputs.make(observation(loaded, view)[None], view.rtg, view.timestep)


def front_object(obs: np.ndarray) -> str | None:
    """What is in the cell in front ("ball", "goal", "wall"), or None when it is empty."""
    return FRONT_OBJECTS.get(int(obs[FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1], 0]))


def probabilities(model: DecisionTransformer, inp: Inputs, hooks: list | None = None) -> np.ndarray:
    """Action probabilities (softmax of the logits ``interventions.run`` gives, under ``hooks``)."""
    return torch.softmax(run(model, inp, hooks).double(), dim=-1)[0].numpy()


# -- interventions: the claims' recipes --------------------------------------------------------------------------


def recipes_for(obs: np.ndarray) -> tuple[str, ...]:
    """The recipes the claims measure, the paired one only when something is in front to remove."""
    paired = front_object(obs) is not None
    return tuple(r for r in recipe_lib.RECIPES if paired or r not in recipe_lib.PAIRED_RECIPES)


def recipe_hooks(loaded: Loaded, inp: Inputs, component: str, recipe: str) -> list:
    """The claims' hooks for one recipe on one component, at the state's RTG (point estimate: the whole walk's
    mean; the counterfactual patch from the same state with the front object removed)."""
    comp = loaded.subject.component(component)
    paired = None
    if recipe in recipe_lib.PAIRED_RECIPES:
        if front_object(inp.obs[0].numpy()) is None:
            raise ConfigError(f"the {recipe} recipe needs an object in front to remove; the front cell is empty")
        paired = Inputs.make(front_cleared(inp.obs), inp.rtg, inp.timestep)
    seed = 0
    hooks, _ = recipe_lib.recipe_hooks(
        loaded.subject, [comp], recipe, float(inp.rtg[0]), len(inp), seed, point=True, paired=paired
    )
    return hooks


def intervention_hooks(loaded: Loaded, view: View, inp: Inputs) -> list:
    """The view's intervention as hooks ([] for none)."""
    if view.ablate == NO_INTERVENTION:
        return []
    return recipe_hooks(loaded, inp, view.ablate, view.recipe)


def metric_value(loaded: Loaded, inp: Inputs, metric: str, hooks: list | None = None) -> float:
    """A claim metric (``p_forward``, ``forward-right`` ...) on the state, as the claims compute it."""
    return float(metric_values(loaded.subject, inp, metric, hooks)[0])


def recipe_effects(loaded: Loaded, inp: Inputs, metric: str) -> dict[str, dict[str, float]]:
    """component -> recipe -> change of ``metric`` under that recipe on this state (what an ``Ablation`` check
    measures per state)."""
    clean = metric_value(loaded, inp, metric)
    out: dict[str, dict[str, float]] = {}
    for name in component_names(loaded.model):
        out[name] = {
            r: metric_value(loaded, inp, metric, recipe_hooks(loaded, inp, name, r)) - clean
            for r in recipes_for(inp.obs[0].numpy())
        }
    return out


# -- inspection ----------------------------------------------------------------------------------------------------


def dla(loaded: Loaded, inp: Inputs, direction: str, hooks: list | None = None) -> list[tuple[str, float]]:
    """Direct logit attribution along ``direction``, one row per component (heads' sources merged)."""
    return attribution_table(attribute(loaded.model, inp, direction, fwd_hooks=hooks or None), grouped=True)


def attention(model: DecisionTransformer, args: tuple, hooks: list | None = None) -> dict[int, np.ndarray]:
    """layer -> attention pattern (head, query, key) for one input (one-timestep ``Inputs.args`` or a window)."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    with torch.no_grad(), hooked(model, hooks or []):
        _, cache = model.run_with_cache(*args, names_filter=names)
    return {layer: cache[n][0].double().numpy() for layer, n in enumerate(names)}


def rtg_path_patching(loaded: Loaded, inp: Inputs, corrupt_rtg: float, action: str) -> list[dict[str, object]]:
    """Path patching of the RTG: the state at ``corrupt_rtg`` with each head's (and the MLP's) clean output at the
    state token delivered only to the unembed, or only to the MLP; P(action) clean, corrupt, patched."""
    model = loaded.model
    corrupt = inp.with_rtg(corrupt_rtg)
    metric = prob_metric(action)
    rows = []
    for sender in component_names(model):
        comp = parse_component(sender, model)
        mlp = f"mlp{comp.layer}" if model.cfg.n_layers > 1 else "mlp"
        receivers = ["unembed", mlp] if isinstance(comp, Head) else ["unembed"]
        for receiver in receivers:
            res = path_patching(model, inp, corrupt, sender, receiver, metric)
            rows.append(
                {
                    "path": res.name,
                    "clean": float(res.clean[0]),
                    "corrupt": float(res.corrupt[0]),
                    "patched": float(res.patched[0]),
                    "restored": res.normalized,
                }
            )
    return rows


@dataclass(frozen=True)
class HeadCircuit:
    """One head's QK and OV on the state shown: per view cell, its part of the state token's attention score for
    the RTG token, and of what the head writes along the direction when it attends to the state."""

    name: str
    qk_cells: np.ndarray  # (7, 7) [x, y]
    qk_score: float
    model_score: float
    ov_cells: np.ndarray
    ov_value: float
    rtg_push: tuple[float, float]


def head_circuits(loaded: Loaded, inp: Inputs, direction: str) -> list[HeadCircuit]:
    """QK and OV (``circuits.qk_view`` / ``ov_view``, with biases) of every head on the state shown."""
    model = loaded.model
    enc = model.encode_obs(inp.obs).to(torch.float64)[0]
    rtg, t = float(inp.rtg[0]), int(inp.timestep[0])
    out = []
    names = [f"blocks.{layer}.attn.hook_attn_scores" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(*inp.args, names_filter=names)
    for layer in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            qk = qk_view(model, layer, h, rtg=rtg, timestep=t)
            ov = ov_view(model, layer, h, direction, timestep=t)
            per_input = enc.reshape(qk.weights.shape)
            out.append(
                HeadCircuit(
                    f"L{layer}H{h}",
                    (qk.weights * per_input).sum(0).numpy(),
                    float(qk.score(model, inp.obs)[0]),
                    float(cache[names[layer]][0, h, 1, 0]),
                    (ov.weights * per_input).sum(0).numpy(),
                    float(ov.value(model, inp.obs)[0]),
                    rtg_ov(model, layer, h, direction, timestep=t),
                )
            )
    return out


# -- MemoryDT -----------------------------------------------------------------------------------------------------


def memory_window(model: DecisionTransformer, frames: np.ndarray, actions: np.ndarray, rtgs: np.ndarray) -> tuple:
    """The context window DTI feeds for the episode so far (``dt.window``): obs, rtg, timesteps, actions."""
    t = len(frames)
    window = pad_window(
        frames,
        actions[: t - 1],
        rtgs[:t],
        np.arange(t),
        n_timesteps=model.cfg.n_timesteps,
        pad_action=model.cfg.n_actions,
        initial_rtg=float(rtgs[0]),
    )
    return stack_windows([window])


def token_labels(model: DecisionTransformer) -> list[str]:
    """A name per token of a full window (R0 s0 a0 R1 ...), from the config's own token positions."""
    labels = [""] * model.cfg.n_ctx
    for i in range(model.cfg.n_timesteps):
        for kind, short in (("rtg", "R"), ("state", "s"), ("action", "a")):
            if kind == "action" and i == model.cfg.n_timesteps - 1:
                continue  # the last timestep has no action token
            labels[model.cfg.token_position(i, kind)] = f"{short}{i}"
    return labels


def window_probabilities(model: DecisionTransformer, window: tuple, hooks: list | None = None) -> np.ndarray:
    return torch.softmax(window_logits(model, window, hooks).double(), dim=-1).numpy()


def window_zero_ablations(model: DecisionTransformer, window: tuple, action: int) -> dict[str, float]:
    """component -> change of P(action) when it is zero-ablated (``interventions.ablation_hooks``) on the window."""
    clean = window_probabilities(model, window)[action]
    return {
        name: float(window_probabilities(model, window, ablation_hooks(model, name, "zero"))[action] - clean)
        for name in component_names(model)
    }


def window_hooks(loaded: Loaded, view: View) -> list:
    """Memory: the chosen component zero-ablated (the claims' recipes take their means from Dynamic Obstacles
    walks, so only ``zero`` applies here)."""
    return [] if view.ablate == NO_INTERVENTION else ablation_hooks(loaded.model, view.ablate, "zero")


def window_logits(model: DecisionTransformer, window: tuple, hooks: list | None = None) -> torch.Tensor:
    with torch.no_grad(), hooked(model, hooks or []):
        return model(*window)[0]
