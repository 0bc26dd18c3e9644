"""A checkpoint under test: the model, its role bindings, its expected verdicts, and per-checkpoint caches.

Claims name components by role (``obstacle_head``); a Subject binds roles to components for one checkpoint —
from a roles file, our manifest, or the post's binding by default — and caches what several claims share
(rendered families, dataset means for ablation, rollouts) so a suite evaluates each thing once.

Every random draw behind a claim's numbers (obstacle layouts of the state families, their timesteps, the
rollout seeds, the random walk the ablation means come from) derives from one ``generation_seed``. Seed 0 is
the recorded run; other seeds ask "would the verdict survive other, equally valid data?" (``flakecheck``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dt_circuits.analysis.interventions import Component, Head, Inputs, component_names, dataset_means, parse_component
from dt_circuits.core.backends import DEFAULT_ENV_BACKEND
from dt_circuits.core.errors import ConfigError, DTCircuitsError
from dt_circuits.core.io import read_json, sha256_file
from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR
from dt_circuits.dt.checkpoint import load_checkpoint, read_manifest
from dt_circuits.dt.model import DecisionTransformer, weights_digest
from dt_circuits.env import scenarios
from dt_circuits.evaluation.rollout import RolloutResult

#: The post's binding: head 1 avoids obstacles, head 0 avoids the goal from the top, the MLP from the left.
POST_ROLES: dict[str, str] = {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}
#: Roles bound when nothing else binds them, per env family (MemoryDT's claims name components directly).
DEFAULT_ROLES: dict[str, dict[str, str]] = {"dynamic-obstacles": POST_ROLES, "memory": {}}
#: Expected verdicts for foreign checkpoints, keyed by the file's sha256 (ours live in their manifests).
FOREIGN_EXPECTATIONS_DIR = BUILTIN_CLAIMS_DIR / "expectations"
#: States in the random walk behind every ablation mean. The mean's own noise moves every ablated state at once,
#: so the bootstrap over states cannot see it: at 2000 states it made one-hot's goal-avoidance-mlp-left effect
#: vary with SD 0.008 between generation seeds (a flip in 20 runs); 20000 halve that (docs/reliability.md).
MEAN_DATASET_SIZE = 20000
#: The walk resets after this many steps (or when an episode ends), so it visits timesteps 0..99.
WALK_EPISODE_STEPS = 100
#: Mixed into derived seeds at generation seeds other than 0, so no derived key can collide with a seed-0 key.
_GENERATION_TAG = 0x6E5EED


def load_roles(path: str | os.PathLike[str]) -> dict[str, str]:
    """A roles file: JSON object role -> component ("L0H1", "head 0", "mlp"); errors name the problem."""
    p = Path(path)
    data = read_json(p, "roles file", ConfigError)
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
    #: the seed every generated input derives from (0: the recorded numbers); see the module docstring
    generation_seed: int = 0
    #: processes for rollouts (None: every core); the numbers do not depend on it
    workers: int | None = None
    #: who steps the rollout checks' envs: "envpool" (default; the recorded numbers) or "minigrid"
    env_backend: str = DEFAULT_ENV_BACKEND
    #: the family of tests a check is adjusted for (None: the shipped claims'; see claims.comparisons)
    comparisons: Any = None
    #: measure only what the verdict reads (an ablation's primary recipe; no per-recipe readings, no mediation
    #: share): for controls and other callers that use ``verdict.holds`` alone. Whether a claim holds is the same
    #: (it is the primary recipe's; each recipe's values are computed on their own); the JSON has less in it, and
    #: a failure is never called recipe-dependent or uninformative (there are no other recipes to say so).
    verdict_only: bool = False
    #: stop a claim at its first failing check: it fails whatever the rest would measure (for controls that only
    #: ask "does it fail?"; the verdict then lists the checks up to that one)
    until_first_failure: bool = False
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        seed = self.generation_seed
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"generation_seed must be a non-negative integer, got {seed!r}")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        roles_file: str | os.PathLike[str] | None = None,
        *,
        generation_seed: int = 0,
        expectations_dir: str | os.PathLike[str] | None = None,
    ) -> Subject:
        """Load a checkpoint; ``expectations_dir`` holds recorded verdicts for foreign files (default: the
        shipped claims' ``library/expectations``)."""
        model = load_checkpoint(path)
        return cls.from_model(
            model, roles_file=roles_file, generation_seed=generation_seed, expectations_dir=expectations_dir
        )

    @classmethod
    def from_model(
        cls,
        model: DecisionTransformer,
        *,
        name: str | None = None,
        roles_file: str | os.PathLike[str] | None = None,
        roles: dict[str, str] | None = None,
        expectations: dict[str, dict[str, Any]] | None = None,
        generation_seed: int = 0,
        expectations_dir: str | os.PathLike[str] | None = None,
    ) -> Subject:
        info = getattr(model, "checkpoint_info", None)
        manifest = info.manifest if info else {}
        bound = dict(DEFAULT_ROLES.get(info.env.family if info else "dynamic-obstacles", {}))
        origin = dict.fromkeys(bound, "the post's binding")
        bound.update(manifest.get("roles") or {})
        origin.update(dict.fromkeys(manifest.get("roles") or {}, "the checkpoint manifest"))
        if roles_file is not None:
            from_file = load_roles(roles_file)
            bound.update(from_file)
            origin.update(dict.fromkeys(from_file, f"roles file {roles_file}"))
        bound.update(roles or {})
        origin.update(dict.fromkeys(roles or {}, "the caller"))
        if expectations is None:
            expectations = manifest.get("expectations") or (
                foreign_expectations(info.path, expectations_dir) if info else {}
            )
        subject = cls(
            name=name or (info.name if info else "model"),
            model=model,
            roles=bound,
            expectations=dict(expectations or {}),
            source=info.path if info else "<in memory>",
            generation_seed=generation_seed,
        )
        for role in bound:  # fail early, naming the role and where it was bound, on a component the model lacks
            try:
                subject.component(role)
            except DTCircuitsError as exc:
                raise ConfigError(f"role {role!r} bound to {bound[role]!r} by {origin[role]}: {exc}") from None
        return subject

    def with_roles(self, roles: dict[str, str]) -> Subject:
        """The same model with ``roles`` rebound: it shares this subject's cached rollouts, samples and ablation
        means, which depend on the model and the generation seed, never on which component plays a role."""
        import dataclasses

        rebound = dataclasses.replace(self, roles={**self.roles, **roles})
        rebound._cache = self._cache
        for role in roles:
            rebound.component(role)  # an unknown component fails here, naming it
        return rebound

    @property
    def env_family(self) -> str:
        """The env family of the checkpoint ("dynamic-obstacles", "memory"): which claims apply to it."""
        info = getattr(self.model, "checkpoint_info", None)
        return info.env.family if info else "dynamic-obstacles"

    @property
    def rollout_backend(self) -> str:
        """Who steps this subject's rollouts: ``env_backend`` for Dynamic Obstacles; Memory rollouts are always
        Minigrid's (the EnvPool backend covers Dynamic Obstacles only)."""
        return self.env_backend if self.env_family == "dynamic-obstacles" else "minigrid"

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

    # -- generation seeds ----------------------------------------------------------------------------------------
    def seed_key(self, *key: int) -> list[int]:
        """An RNG key for one random draw: ``key`` itself at generation seed 0 (the recorded numbers), else
        ``key`` extended by a tag and the generation seed (a different, equally valid draw)."""
        return list(key) if self.generation_seed == 0 else [*key, _GENERATION_TAG, int(self.generation_seed)]

    def derived_seed(self, base: int) -> int:
        """An integer seed (e.g. a rollout's) for this generation seed; ``base`` itself at generation seed 0."""
        if self.generation_seed == 0:
            return int(base)
        return int(np.random.SeedSequence(self.seed_key(int(base))).generate_state(1)[0])

    def family(self, name: str) -> scenarios.StateFamily:
        """A named family: '<kind>-in-front' or 'goal-from-top' / 'goal-from-left', with the obstacle layouts
        of this subject's generation seed. Shared by all subjects with that seed."""
        return _family(name, self.generation_seed)

    def ablation_means(self, components: list[Component], rtg: float) -> Any:
        """Dataset means over a seeded random walk in the real env, queried at ``rtg`` (computed once)."""
        key = ("means", float(rtg))
        if key not in self._cache:
            walk = mean_walk(self.generation_seed)
            data = Inputs.make(walk.obs, np.full(len(walk.obs), rtg, np.float32), walk.timesteps)
            every = [parse_component(c, self.model) for c in component_names(self.model)]
            self._cache[key] = dataset_means(self.model, data, every)
        return self._cache[key]

    def rollouts(self, rtg: float, episodes: int, seed: int) -> RolloutResult:
        """Sampled episodes at ``rtg``; ``seed`` is the claim's base seed, moved by the generation seed."""
        key = ("rollouts", float(rtg), episodes, seed)
        if key not in self._cache:  # (the cache is per Subject, so per env_backend)
            self.prefetch_rollouts([(rtg, episodes, seed)])
        return self._cache[key]

    def prefetch_rollouts(self, requests: Iterable[tuple[float, int, int]]) -> None:
        """Roll out every (rtg, episodes, seed) not yet cached in one parallel batch.

        Rollouts dominate a suite's wall time; batching all RTGs that share (episodes, seed) into one
        ``evaluate_rtgs`` call keeps every core busy with one worker start-up. Fixed episode chunks make the
        numbers independent of ``workers``.
        """
        from dt_circuits.core.cache import load_arrays, save_arrays
        from dt_circuits.evaluation.pool import evaluate_rtgs

        groups: dict[tuple[int, int], list[float]] = {}
        for rtg, episodes, seed in requests:
            if ("rollouts", float(rtg), episodes, seed) not in self._cache:
                rtgs = groups.setdefault((int(episodes), int(seed)), [])
                if float(rtg) not in rtgs:
                    rtgs.append(float(rtg))
        for (episodes, seed), rtgs in groups.items():
            derived = self.derived_seed(seed)
            missing = []
            for rtg in rtgs:
                arrays = load_arrays("rollouts", key) if (key := self._rollout_key(rtg, episodes, derived)) else None
                if arrays is None:
                    missing.append(rtg)
                else:
                    self._cache[("rollouts", rtg, episodes, seed)] = RolloutResult.from_arrays(arrays)
            if not missing:
                continue
            results = evaluate_rtgs(
                self.model, missing, n_episodes=episodes, seed=derived, workers=self.workers,
                progress=False, record_states=True, env_backend=self.env_backend,
            )  # fmt: skip
            for rtg, res in zip(missing, results, strict=True):
                self._cache[("rollouts", rtg, episodes, seed)] = res
                if key := self._rollout_key(rtg, episodes, derived):
                    save_arrays("rollouts", key, res.to_arrays())

    def disk_cached(
        self, kind: str, params: dict[str, Any], compute: Callable[[], dict[str, np.ndarray]], *code: object
    ) -> dict[str, np.ndarray]:
        """``compute()`` once per (this subject's weights, ``params``, ``code``'s source and the model's forward,
        library versions, CPU kind) on this machine: the disk cache (:mod:`dt_circuits.core.cache`) for what a
        claim measures by running the model in the env (wall traces, ...), which every run on the same weights
        repeats. ``params`` must name every other input (RTG, episodes, derived seed, env)."""
        from dt_circuits.core.cache import cached_arrays, fit_key
        from dt_circuits.dt import layers, model

        libraries = ("minigrid", "gymnasium", "numpy", "torch")
        key = fit_key(*code, model, layers, libraries=libraries, **params, weights=self._weights_digest())
        return cached_arrays(kind, key, compute)

    def _weights_digest(self) -> str:
        if "weights-digest" not in self._cache:
            self._cache["weights-digest"] = weights_digest(self.model)
        return self._cache["weights-digest"]

    def _rollout_key(self, rtg: float, episodes: int, seed: int) -> dict[str, Any] | None:
        """What one RTG's recorded rollouts depend on, for the disk cache (:mod:`dt_circuits.core.cache`): the
        weights (digest), the request, the env and backend, the code that rolls out and the model's forward, the
        library versions and this machine's CPU kind (float kernels pick actions); None: no caching (code
        without sources)."""
        if "rollout-source" not in self._cache:
            from dt_circuits.core.cache import fit_key
            from dt_circuits.dt import layers, model, window
            from dt_circuits.env import memory, spec
            from dt_circuits.evaluation import envpool_rollout, memory_rollout, pool, rollout
            from dt_circuits.evaluation import episodes as episodes_module
            from dt_circuits.evaluation.pool import model_env

            self._cache["rollout-source"] = fit_key(
                pool, rollout, envpool_rollout, memory_rollout, episodes_module, model, layers, window, spec, memory,
                libraries=("envpool", "minigrid", "gymnasium", "numpy", "torch"), weights=self._weights_digest(),
                env=model_env(self.model).to_dict(),
            )  # fmt: skip
        base = self._cache["rollout-source"]
        if base is None:
            return None
        return {**base, "rtg": float(rtg), "episodes": int(episodes), "seed": int(seed), "backend": self.env_backend}

    def expected(self, claim_id: str) -> str:
        return (self.expectations.get(claim_id) or {}).get("expected", "holds")


_FAMILIES: dict[tuple[str, int], scenarios.StateFamily] = {}


GOAL_FAMILY_LAYOUTS = 4096


def _family(name: str, seed: int) -> scenarios.StateFamily:
    key = (name, seed)
    if key not in _FAMILIES:
        if name.endswith("-in-front"):
            fam = scenarios.in_front(name.removesuffix("-in-front"), seed=seed)
        elif name.startswith("goal-from-"):
            # One pose per side, so the sample is over obstacle layouts: 4096 of them resolve a 0.26 effect
            # against a 0.25 bound (64 flipped verdicts between generation seeds; docs/reliability.md).
            fam = scenarios.goal_in_front(name.removeprefix("goal-from-"), n=GOAL_FAMILY_LAYOUTS, seed=seed)
        else:
            raise ConfigError(f"unknown state family {name!r}")
        _FAMILIES[key] = fam
    return _FAMILIES[key]


def mean_walk(seed: int) -> scenarios.WalkDataset:
    """The seeded random walk (MEAN_DATASET_SIZE states) every dataset-mean ablation is taken over: taken once
    (:func:`dt_circuits.env.walks.walk`; seed 0's is shipped with the package, any other is disk-cached)."""
    from dt_circuits.env.walks import walk

    return walk(MEAN_DATASET_SIZE, seed=seed, max_episode_steps=WALK_EPISODE_STEPS)


def recorded_expectations(
    path: str | os.PathLike[str], expectations_dir: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """What is recorded for a checkpoint without loading its weights: our manifest's, else a foreign file's."""
    p = Path(path)
    if p.is_dir():
        return dict(read_manifest(p).get("expectations") or {})
    return foreign_expectations(str(p), expectations_dir)


def foreign_expectations(
    path: str, expectations_dir: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Recorded expectations for a foreign file (matched by sha256), or {} — which expects every claim to hold."""
    p = Path(path)
    if not p.is_file():
        return {}
    candidate = Path(expectations_dir or FOREIGN_EXPECTATIONS_DIR) / f"{sha256_file(p)}.json"
    if not candidate.exists():
        return {}
    data = read_json(candidate, "expectations file", ConfigError)
    expectations = data.get("expectations", {}) if isinstance(data, dict) else None
    if not isinstance(expectations, dict) or not all(
        isinstance(e, dict) and e.get("expected") in ("holds", "fails") for e in expectations.values()
    ):
        raise ConfigError(
            f'expectations file {candidate} must map claim ids to objects with "expected": "holds" or "fails"'
        )
    return expectations
