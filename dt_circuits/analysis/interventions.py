"""Components, model inputs, and ablations (zero / dataset-mean / resample) as hook lists and context managers.

Every other primitive (patching, attribution, scans, statistics) addresses the model through the same small
value types: ``Head(layer, head)``, ``MLP(layer)`` and ``HookSite(name)``. A component names *where* the
intervention lands:

- ``Head(l, h)`` -> ``blocks.{l}.attn.hook_z`` sliced at head ``h`` (the head's value mix, before ``W_O``;
  ``b_O`` is shared by all heads and is not part of any one head, so it is never ablated with a head);
- ``MLP(l)`` -> ``blocks.{l}.mlp.hook_post`` (the neuron activations; ``b_out`` stays, like ``b_O``);
- ``HookSite(name)`` -> the whole activation at any named hook.

Why dataset means: DTI's app "mean-ablated" a head by averaging over ``d_head`` inside one forward pass, which
is not an ablation to a typical value at all. Here a mean is taken over a dataset of inputs, per position (and
per head), computed once (:func:`dataset_means`) and reused by every hook built from it.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer, as_model_inputs

HookFn = Callable[..., torch.Tensor]
FwdHooks = list[tuple[str, HookFn]]
AblationMethod = Literal["zero", "mean", "resample"]


# -- components ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """Attention head ``head`` of block ``layer``; intervened on at ``blocks.{layer}.attn.hook_z``."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.attn.hook_z"


@dataclass(frozen=True)
class MLP:
    """The MLP of block ``layer``; intervened on at its neuron activations ``blocks.{layer}.mlp.hook_post``."""

    layer: int = 0

    def __str__(self) -> str:
        return f"L{self.layer} MLP"

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.mlp.hook_post"


@dataclass(frozen=True)
class HookSite:
    """Any named hook point (``blocks.0.hook_resid_mid``, ``hook_state_embed`` ...), intervened on as a whole."""

    name: str

    def __str__(self) -> str:
        return self.name

    @property
    def hook_name(self) -> str:
        return self.name


Component = Head | MLP | HookSite
ComponentLike = Component | str

_HEAD_RE = re.compile(r"^(?:l(?:ayer)?[\s._-]*(\d+)[\s._-]*)?h(?:ead)?[\s._-]*(\d+)$", re.IGNORECASE)
_MLP_RE = re.compile(r"^(?:l(?:ayer)?[\s._-]*(\d+)[\s._-]*)?mlp(?:[\s._-]*(\d+))?$", re.IGNORECASE)


def component_names(model: DecisionTransformer) -> list[str]:
    """Every head and MLP of ``model`` by name (``L0H1``; ``mlp``, or ``mlp0``... when there are several layers)."""
    heads = [f"L{layer}H{h}" for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    return heads + [f"mlp{layer}" if model.cfg.n_layers > 1 else "mlp" for layer in range(model.cfg.n_layers)]


def parse_component(spec: ComponentLike, model: DecisionTransformer | None = None) -> Component:
    """Parse "head 1", "L0H1", "mlp", "L0 MLP", "blocks.0.attn.hook_z" (or pass a component through).

    Claims and the CLI name components in text; parsing in one place means a typo fails as one ConfigError
    line instead of silently ablating nothing. With ``model`` the result is also checked against it
    (:func:`resolve`). A bare "head 1" means layer 0 and is refused as ambiguous in a multi-layer model.
    """
    if isinstance(spec, Head | MLP | HookSite):
        comp: Component = spec
    elif isinstance(spec, str):
        text = spec.strip()
        if m := _HEAD_RE.match(text):
            if m.group(1) is None and model is not None and model.cfg.n_layers > 1:
                n = model.cfg.n_layers
                raise ConfigError(f"component {spec!r} is ambiguous in a {n}-layer model; say L<layer>H<head>")
            comp = Head(int(m.group(1) or 0), int(m.group(2)))
        elif m := _MLP_RE.match(text):
            if m.group(1) is not None and m.group(2) is not None and m.group(1) != m.group(2):
                raise ConfigError(f"component {spec!r} names two different layers")
            layer = m.group(1) or m.group(2)
            if layer is None and model is not None and model.cfg.n_layers > 1:
                n = model.cfg.n_layers
                raise ConfigError(f"component {spec!r} is ambiguous in a {n}-layer model; say L<layer> MLP")
            comp = MLP(int(layer or 0))
        elif "hook_" in text:
            comp = HookSite(text)
        else:
            raise ConfigError(
                f"cannot parse component {spec!r}; expected e.g. 'head 1', 'L0H1', 'mlp', 'L0 MLP' "
                "or a hook name such as 'blocks.0.attn.hook_z'"
            )
    else:
        raise ConfigError(f"a component must be a string, Head, MLP or HookSite, got {type(spec).__name__}")
    return resolve(model, comp) if model is not None else comp


def resolve(model: DecisionTransformer, spec: ComponentLike) -> Component:
    """Parse ``spec`` and check it exists in ``model``; unknown heads, layers and hooks raise ConfigError."""
    comp = parse_component(spec) if not isinstance(spec, Head | MLP | HookSite) else spec
    if isinstance(comp, Head):
        model.check_head(comp.layer, comp.head)
    elif isinstance(comp, MLP):
        if not 0 <= comp.layer < model.cfg.n_layers:
            raise ConfigError(f"unknown MLP layer {comp.layer}: the model has layers 0..{model.cfg.n_layers - 1}")
    else:
        check_hook_name(model, comp.name)
    return comp


def check_hook_name(model: DecisionTransformer, name: str) -> None:
    """Raise ConfigError naming an unknown hook (with the closest real names as a hint)."""
    if name not in model.hook_dict:
        close = difflib.get_close_matches(name, list(model.hook_dict), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown hook {name!r}{hint}")


def resolve_all(model: DecisionTransformer, specs: ComponentLike | Iterable[ComponentLike]) -> list[Component]:
    """One component or several, each resolved against ``model``."""
    if isinstance(specs, str | Head | MLP | HookSite):
        specs = [specs]
    return [resolve(model, s) for s in specs]


def pos_axis(hook_name: str) -> int | None:
    """Axis of the token position in the activation at ``hook_name`` (None for the (B, d) embeddings)."""
    leaf = hook_name.rsplit(".", 1)[-1]
    if leaf in ("hook_rtg_embed", "hook_state_embed", "hook_time_embed"):
        return None
    if leaf in ("hook_attn_scores", "hook_pattern"):
        return 2  # [batch, head, query_pos, key_pos]: the query (destination) position
    return 1


_POS_RE = re.compile(r"^(rtg|r|state|s|action|a)\s*[\[@]?\s*(-?\d+)\s*\]?$", re.IGNORECASE)
_TOKEN_KIND = {"r": "rtg", "rtg": "rtg", "s": "state", "state": "state", "a": "action", "action": "action"}


def parse_position(model: DecisionTransformer, spec: int | str) -> int:
    """A token position from an int or "<kind>[<timestep>]": "s-1" / "state[-1]" (the last state token, where
    the logits are read), "R0", "a3". Timesteps index a full context window; negative ones count from its end."""
    if isinstance(spec, str):
        m = _POS_RE.match(spec.strip())
        if m is None:
            raise ConfigError(f"cannot parse position {spec!r}; expected e.g. 's-1', 'state[4]', 'R0' or 'a3'")
        return model.cfg.token_position(int(m.group(2)), _TOKEN_KIND[m.group(1).lower()])
    return spec


def check_pos(model: DecisionTransformer, comp: Component, pos: int | str | None) -> int | None:
    """The token position ``pos`` names (None: every position); ConfigError unless the component's activation
    has it. Positions are ints or "<kind>[<timestep>]" strings (:func:`parse_position`)."""
    if pos is None:
        return None
    if pos_axis(comp.hook_name) is None:
        raise ConfigError(f"{comp} has no position axis; intervene on it without pos=")
    pos = parse_position(model, pos)
    if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < model.cfg.n_ctx:
        what = "0 = RTG, 1 = state" if model.cfg.n_ctx == 2 else f"0..{model.cfg.n_ctx - 1}, or e.g. 's-1'"
        raise ConfigError(f"pos {pos!r} is not a token position ({what})")
    return pos


def component_index(comp: Component, ndim: int, pos: int | None) -> tuple[Any, ...]:
    """Index into the activation selecting the component (and optionally one position)."""
    idx: list[Any] = [slice(None)] * ndim
    if pos is not None:
        axis = pos_axis(comp.hook_name)
        if axis is None:
            raise ConfigError(f"{comp} has no position axis; intervene on it without pos=")
        idx[axis] = pos
    if isinstance(comp, Head):
        idx[2] = comp.head  # hook_z: [batch, pos, head, d_head]
    return tuple(idx)


# -- inputs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """A batch of model inputs (obs, rtg, timestep) with the scalars broadcast: the unit every primitive runs on.

    A dataset for mean ablation, the clean and corrupted runs of a patching experiment and a scan grid are all
    ``Inputs``, so they can be concatenated, indexed and re-run without re-stating the RTG or timestep.
    """

    obs: torch.Tensor  # (B, 7, 7, 3) uint8
    rtg: torch.Tensor  # (B,) float32
    timestep: torch.Tensor  # (B,) long

    @classmethod
    def make(cls, obs: Any, rtg: Any, timestep: Any = 0) -> Inputs:
        """Validate and broadcast (scalar rtg/timestep allowed); ranges are re-checked by the model's forward."""
        o, r, t = as_model_inputs(obs, rtg, timestep, max_timestep=sys.maxsize)
        return cls(o.to(torch.uint8), r.to(torch.float32).clone(), t.clone())

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def __getitem__(self, idx: Any) -> Inputs:
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Inputs(self.obs[idx], self.rtg[idx], self.timestep[idx])

    @property
    def args(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.obs, self.rtg, self.timestep

    def with_rtg(self, rtg: Any) -> Inputs:
        """The same states at another RTG (the corruption for RTG-dependence experiments)."""
        return Inputs.make(self.obs, rtg, self.timestep)

    def repeat(self, k: int) -> Inputs:
        """``k`` copies stacked block-wise (copy j occupies rows j*B .. (j+1)*B - 1), for batched scans."""
        return Inputs(self.obs.repeat(k, 1, 1, 1), self.rtg.repeat(k), self.timestep.repeat(k))

    @staticmethod
    def cat(parts: Sequence[Inputs]) -> Inputs:
        return Inputs(
            torch.cat([p.obs for p in parts]), torch.cat([p.rtg for p in parts]), torch.cat([p.timestep for p in parts])
        )


def run(model: DecisionTransformer, inputs: Inputs, fwd_hooks: FwdHooks | None = None) -> torch.Tensor:
    """Logits for ``inputs`` under ``fwd_hooks`` (none by default), without autograd."""
    with torch.no_grad(), hooked(model, fwd_hooks or []):
        return model(*inputs.args)


# -- hook management ----------------------------------------------------------------------------------------


@contextmanager
def hooked(model: DecisionTransformer, fwd_hooks: FwdHooks) -> Iterator[DecisionTransformer]:
    """Context manager running ``model`` with ``fwd_hooks``; they are removed on exit, even on an exception.

    Names are checked before any hook is added, so a typo raises ConfigError with the model untouched.
    """
    hooks = list(fwd_hooks)
    for name, _ in hooks:
        if isinstance(name, str):  # TransformerLens also accepts a filter function on names
            check_hook_name(model, name)
    with model.hooks(fwd_hooks=hooks):
        yield model


# -- activations over a dataset ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivationStore:
    """Activations of a dataset at some hooks (hook name -> (N, ...)): donors for resampling, source of means."""

    acts: dict[str, torch.Tensor]
    n: int

    def mean(self) -> ActivationMeans:
        """Per-position mean over the dataset axis only."""
        return ActivationMeans({k: v.mean(dim=0) for k, v in self.acts.items()}, self.n)


@dataclass(frozen=True)
class ActivationMeans:
    """Dataset means per hook (hook name -> activation shape without the batch axis), computed once, reused."""

    means: dict[str, torch.Tensor]
    n: int

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.means:
            raise ConfigError(f"no dataset mean for hook {name!r}; compute means for that component first")
        return self.means[name]


def collect_activations(
    model: DecisionTransformer,
    data: Inputs,
    components: ComponentLike | Iterable[ComponentLike],
    *,
    fwd_hooks: FwdHooks | None = None,
    batch_size: int = 4096,
) -> ActivationStore:
    """Run ``data`` (in batches) and keep the activations the components live at."""
    names = sorted({c.hook_name for c in resolve_all(model, components)})
    if len(data) == 0:
        raise ConfigError("cannot collect activations over an empty dataset")
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with torch.no_grad(), hooked(model, fwd_hooks or []):
        for start in range(0, len(data), batch_size):
            _, cache = model.run_with_cache(*data[start : start + batch_size].args, names_filter=names)
            for n in names:
                chunks[n].append(cache[n])
    return ActivationStore({n: torch.cat(v) for n, v in chunks.items()}, len(data))


def dataset_means(
    model: DecisionTransformer,
    data: Inputs,
    components: ComponentLike | Iterable[ComponentLike],
    *,
    batch_size: int = 4096,
) -> ActivationMeans:
    """Mean activation per position over ``data`` at the components' hooks (for mean ablation)."""
    return collect_activations(model, data, components, batch_size=batch_size).mean()


# -- ablation hooks -----------------------------------------------------------------------------------------


def replace_hook(comp: Component, pos: int | None, value_fn: Callable[[torch.Tensor], torch.Tensor]) -> HookFn:
    """A hook writing ``value_fn(act)`` (broadcastable to act) into the component's slice of a clone of act."""

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = act.clone()
        idx = component_index(comp, act.ndim, pos)
        out[idx] = value_fn(act).to(act.dtype).expand_as(act)[idx]
        return out

    return hook


def variants_hook(comp: Component, values: torch.Tensor, n_rows: int) -> HookFn:
    """A hook writing k variants of the component's value (``values``: (k, *activation shape)) into k block-wise
    copies of the batch: an activation of ``n_rows`` rows comes out with k·n_rows (copy j holds ``values[j]``) and
    the model runs what lies downstream on the copies (``dt.layers.widened``), so the work upstream of the hook
    is done once. An activation that arrives already widened (k·n_rows rows: inputs tiled by the caller, or an
    earlier hook of the same intervention) is written in place of a clone, copy j again taking ``values[j]``."""
    k = int(values.shape[0])
    per_row = values.repeat_interleave(n_rows, dim=0)

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        if act.shape[0] == n_rows:
            out = act.repeat(k, *([1] * (act.ndim - 1)))
        elif act.shape[0] == k * n_rows:
            out = act.clone()
        else:
            raise ConfigError(f"{comp}: {act.shape[0]} rows reach a hook made for {n_rows} rows and {k} variants")
        idx = component_index(comp, act.ndim, None)
        out[idx] = per_row.to(act.dtype).expand_as(out)[idx]
        return out

    return hook


def donor_indices(batch: int, seed: int, n_source: int | None = None) -> np.ndarray:
    """Seeded donor rows: from a source of ``n_source`` states, or (None) another row of the same batch.

    Deterministic in (batch, seed, n_source), so the same call resamples the same way every time.
    """
    rng = np.random.default_rng([seed, batch])
    if n_source is not None:
        return rng.integers(n_source, size=batch)
    if batch < 2:
        raise ConfigError("resampling within a batch needs at least 2 states (there is no other state to take)")
    return (np.arange(batch) + rng.integers(1, batch, size=batch)) % batch


def ablation_hooks(
    model: DecisionTransformer,
    components: ComponentLike | Iterable[ComponentLike],
    method: AblationMethod = "zero",
    *,
    means: ActivationMeans | None = None,
    source: ActivationStore | None = None,
    seed: int = 0,
    pos: int | None = None,
) -> FwdHooks:
    """fwd_hooks ablating every component (at every position, or only ``pos``).

    - ``zero``: the component's activation becomes 0.
    - ``mean``: it becomes the dataset mean from ``means`` (see :func:`dataset_means`), per position.
    - ``resample``: it becomes another state's activation: a seeded draw from ``source`` (see
      :func:`collect_activations`) or, without ``source``, from another row of the same batch. All components
      in one call take the same donor state, so several resampled components stay mutually consistent.
    """
    comps = resolve_all(model, components)
    hooks: FwdHooks = []
    for comp in comps:
        pos = check_pos(model, comp, pos)
        name = comp.hook_name
        if method == "zero":
            fn = replace_hook(comp, pos, torch.zeros_like)
        elif method == "mean":
            if means is None:
                raise ConfigError("mean ablation needs dataset means (dataset_means(model, data, components))")
            mean = means[name]
            fn = replace_hook(comp, pos, lambda act, mean=mean: mean.to(act.device)[None])
        elif method == "resample":
            if source is not None and name not in source.acts:
                raise ConfigError(f"resample source has no activations for hook {name!r}")
            donors = None if source is None else source.acts[name]

            def value(act: torch.Tensor, donors: torch.Tensor | None = donors) -> torch.Tensor:
                n = None if donors is None else int(donors.shape[0])
                idx = torch.as_tensor(donor_indices(act.shape[0], seed, n), device=act.device)
                return (act if donors is None else donors.to(act.device))[idx]

            fn = replace_hook(comp, pos, value)
        else:
            raise ConfigError(f"unknown ablation method {method!r}; expected 'zero', 'mean' or 'resample'")
        hooks.append((name, fn))
    return hooks


@contextmanager
def ablated(
    model: DecisionTransformer,
    components: ComponentLike | Iterable[ComponentLike],
    method: AblationMethod = "zero",
    **kwargs: Any,
) -> Iterator[DecisionTransformer]:
    """``with ablated(model, ["L0H1", "mlp"], "mean", means=m): model(...)`` -- hooks removed on exit."""
    with hooked(model, ablation_hooks(model, components, method, **kwargs)) as m:
        yield m
