"""A checkpoint under test: the model, its role bindings, its expected verdicts, and per-checkpoint caches.

Claims name components by role (``obstacle_head``); a Subject binds roles to components for one checkpoint —
from a roles file, our manifest, or the post's binding by default — and caches what several claims share
(rendered families, dataset means for ablation, rollouts) so a suite evaluates each thing once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dt_circuits import scenarios
from dt_circuits.checkpoint import load_checkpoint, sha256_file
from dt_circuits.errors import ConfigError
from dt_circuits.interventions import Component, Head, Inputs, dataset_means, parse_component
from dt_circuits.model import DecisionTransformer
from dt_circuits.paths import REPO_ROOT
from dt_circuits.rollout import RolloutResult, rollout

#: The post's binding: head 1 avoids obstacles, head 0 avoids the goal from the top, the MLP from the left.
POST_ROLES: dict[str, str] = {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}
#: Expected verdicts for foreign checkpoints, keyed by the file's sha256 (ours live in their manifests).
FOREIGN_EXPECTATIONS_DIR = REPO_ROOT / "claims" / "expectations"
MEAN_DATASET_SIZE = 2000


def load_roles(path: str | os.PathLike[str]) -> dict[str, str]:
    """A roles file: JSON object role -> component ("L0H1", "head 0", "mlp"); errors name the problem."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"roles file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"roles file {p} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"roles file {p} must be a JSON object mapping role names to components")
    unknown = set(data) - set(POST_ROLES)
    if unknown:
        raise ConfigError(f"roles file {p} names unknown role(s) {', '.join(sorted(unknown))}")
    return data


@dataclass
class Subject:
    """Everything claims need to know about one checkpoint."""

    name: str
    model: DecisionTransformer
    roles: dict[str, str]
    expectations: dict[str, dict[str, Any]]
    source: str
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str], roles_file: str | os.PathLike[str] | None = None) -> Subject:
        model = load_checkpoint(path)
        return cls.from_model(model, roles_file=roles_file)

    @classmethod
    def from_model(
        cls,
        model: DecisionTransformer,
        *,
        name: str | None = None,
        roles_file: str | os.PathLike[str] | None = None,
        roles: dict[str, str] | None = None,
        expectations: dict[str, dict[str, Any]] | None = None,
    ) -> Subject:
        info = getattr(model, "checkpoint_info", None)
        manifest = info.manifest if info else {}
        bound = dict(POST_ROLES)
        bound.update(manifest.get("roles") or {})
        if roles_file is not None:
            bound.update(load_roles(roles_file))
        bound.update(roles or {})
        if expectations is None:
            expectations = manifest.get("expectations") or (foreign_expectations(info.path) if info else {})
        subject = cls(
            name=name or (info.name if info else "model"),
            model=model,
            roles=bound,
            expectations=dict(expectations or {}),
            source=info.path if info else "<in memory>",
        )
        for role in bound:
            subject.component(role)  # fail early on a binding to a component the model lacks
        return subject

    # -- roles -------------------------------------------------------------------------------------------------
    def component(self, name: str) -> Component:
        """A role (``obstacle_head``) or a literal component (``L0H1``, ``mlp``) resolved on this model."""
        spec = self.roles.get(name, name)
        comp = parse_component(spec, self.model)
        if isinstance(comp, Head):
            self.model.check_head(comp.layer, comp.head)
        return comp

    def component_label(self, name: str) -> str:
        comp = self.component(name)
        return f"{name} ({comp})" if name in self.roles else str(comp)

    # -- cached inputs -------------------------------------------------------------------------------------------
    @property
    def renderer(self) -> scenarios.StateRenderer:
        if "renderer" not in self._cache:
            self._cache["renderer"] = scenarios.StateRenderer()
        return self._cache["renderer"]

    def family(self, name: str, seed: int = 0) -> scenarios.StateFamily:
        """A named family: '<kind>-in-front' or 'goal-from-top' / 'goal-from-left'. Shared by all subjects."""
        return _family(name, seed)

    def ablation_means(self, components: list[Component], rtg: float) -> Any:
        """Dataset means over a seeded random walk in the real env, queried at ``rtg`` (computed once)."""
        key = ("means", float(rtg))
        if key not in self._cache:
            walk = _walk()
            data = Inputs.make(walk.obs, np.full(len(walk.obs), rtg, np.float32), walk.timesteps)
            every = [parse_component(c, self.model) for c in _all_components(self.model)]
            self._cache[key] = dataset_means(self.model, data, every)
        return self._cache[key]

    def rollouts(self, rtg: float, episodes: int, seed: int) -> RolloutResult:
        key = ("rollouts", float(rtg), episodes, seed)
        if key not in self._cache:
            self._cache[key] = rollout(self.model, rtg=rtg, n_episodes=episodes, seed=seed, sample=True)
        return self._cache[key]

    def expected(self, claim_id: str) -> str:
        return (self.expectations.get(claim_id) or {}).get("expected", "holds")


def _all_components(model: DecisionTransformer) -> list[str]:
    heads = [f"L{layer}H{h}" for layer in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    return heads + [f"mlp{layer}" if model.cfg.n_layers > 1 else "mlp" for layer in range(model.cfg.n_layers)]


_FAMILIES: dict[tuple[str, int], scenarios.StateFamily] = {}
_WALK: list[scenarios.WalkDataset] = []


def _family(name: str, seed: int) -> scenarios.StateFamily:
    key = (name, seed)
    if key not in _FAMILIES:
        if name.endswith("-in-front"):
            fam = scenarios.in_front(name.removesuffix("-in-front"), seed=seed)
        elif name.startswith("goal-from-"):
            fam = scenarios.goal_in_front(name.removeprefix("goal-from-"), seed=seed)
        else:
            raise ConfigError(f"unknown state family {name!r}")
        _FAMILIES[key] = fam
    return _FAMILIES[key]


def _walk() -> scenarios.WalkDataset:
    if not _WALK:
        _WALK.append(scenarios.random_walk(MEAN_DATASET_SIZE, seed=0, max_episode_steps=100))
    return _WALK[0]


def foreign_expectations(path: str) -> dict[str, dict[str, Any]]:
    """Recorded expectations for a foreign file (matched by sha256), or {} — which expects every claim to hold."""
    p = Path(path)
    if not p.is_file():
        return {}
    candidate = FOREIGN_EXPECTATIONS_DIR / f"{sha256_file(p)}.json"
    if not candidate.exists():
        return {}
    return json.loads(candidate.read_text()).get("expectations", {})
