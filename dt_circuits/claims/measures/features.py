"""Claims about features: a linear probe's held-out accuracy (:class:`Probe`) and a subspace's interchange
intervention accuracy (:class:`Subspace`), as measures a ``Check`` takes like any other.

Both are one-sample measures with per-example 0/1 values (a held-out state classified correctly; a held-out pair
whose interchange gives the source's action), and both are clustered by **agent pose**: the probe's folds and
DAS's train/test split never put one pose on both sides, and the interval resamples poses, never examples. A
pose contributes several examples (up to four ball/no-ball pairs: two directions x two layouts; several states in
the probe set) that are not independent, so the statistic is the pooled share over examples and its bootstrap
replicates redraw whole poses (``Measurement.draws``); ``values`` are the per-pose shares, so the result counts
poses as its clusters. Fewer than ``MIN_CLUSTERS`` poses, or no held-out pair whose two actions differ, is no
number (undefined), never a pass.

The states are generated through the real env (:mod:`dt_circuits.features.data`); on-policy states are not used:
they carry no grid state, and the variables are functions of one. See docs/features.md.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dt_circuits.analysis.stats import cluster_bootstrap
from dt_circuits.claims.evaluation.measurement import Measurement, OwnSample
from dt_circuits.claims.evaluation.samples import MIN_CLUSTERS
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.core.errors import ConfigError
from dt_circuits.features.das import Pairs, interchange_correct
from dt_circuits.features.data import ProbeSet, ViewProbeSet, ball_pairs, probe_set, view_probe_set
from dt_circuits.features.localise import METHODS, fit_basis, sae_fit
from dt_circuits.features.probes import cached_held_out_predictions, control_labels
from dt_circuits.features.sites import Site, activations, parse_site
from dt_circuits.features.table import INPUT, INPUT_FRONT, front_cell_features, input_features
from dt_circuits.features.variables import variable

#: bootstrap replicates of a feature measure's pooled share (the suite's own count)
N_BOOTSTRAP = 20_000
#: DAS steps in a claim: the localisation table's 300 gave the same held-out IIA at L0H0 and L0H1 on raw-index,
#: one-hot and the DTI reference as 50 and 100 did (seed 0), at a third of the cost
CLAIM_DAS_STEPS = 100


def _undefined(
    unit: str, describe: str, why: str, sample: str = "generated", cluster_unit: str = "poses"
) -> Measurement:
    """No number: the check fails with reason "undefined: <why>" (never a pass)."""
    return Measurement(
        np.array([np.nan]), unit, describe, estimate=np.nan, draws=np.array([np.nan]), undefined=why,
        sample=sample, cluster_unit=cluster_unit,
    )  # fmt: skip


def _pooled_by_pose(
    correct: np.ndarray,
    poses: np.ndarray,
    unit: str,
    describe: str,
    key: str,
    cluster_unit: str = "poses",
    sample: str = "generated",
) -> Measurement:
    """The pooled share of ``correct`` with a bootstrap over poses (or other ``cluster_unit``s, e.g. episodes):
    per-cluster shares as ``values`` (so the result counts clusters), the pooled share as the estimate and its
    cluster-resampled replicates as ``draws``."""
    correct = np.asarray(correct, dtype=np.float64)
    ids, inverse = np.unique(poses, return_inverse=True)
    if len(ids) < MIN_CLUSTERS:
        why = f"{len(ids)} {cluster_unit} with an example (< {MIN_CLUSTERS})"
        return _undefined(unit, describe, why, sample, cluster_unit)
    per_pose = np.bincount(inverse, weights=correct) / np.bincount(inverse)
    boot = cluster_bootstrap(correct, inverse, n_resamples=N_BOOTSTRAP, seed=zlib.crc32(key.encode()))
    return Measurement(
        per_pose, unit, describe, estimate=float(correct.mean()), draws=boot.draws, sample=sample,
        cluster_unit=cluster_unit,
    )  # fmt: skip


def _site(subject: Subject, name: str) -> Site:
    """A role (``obstacle_head``), a component (``L0H1``, ``mlp``) or a hook name, as a site on this subject."""
    return parse_site(subject.model, subject.roles.get(name, name))


@dataclass(frozen=True)
class ProbeStates:
    """The states a probe is fitted and scored on.

    ``sample="generated"``: the probe set, every valid pose with a ball, a wall, the goal or nothing in front (one
    layout each, from the subject's generation seed) plus ``n_random`` uniformly random states, at RTGs -1 / 0 / 0.9
    and timesteps 0..30 (:func:`dt_circuits.features.data.probe_set`); clusters are poses.
    ``sample="on-policy"``: the states the checkpoint's own rollouts visit at those RTGs (the claims' rollouts of
    ``episodes`` episodes and base ``seed``, so a suite rolls out nothing more; the first ``per_rtg`` episodes of
    each: ~1,000-2,000 states, enough for 5-fold probes at a few seconds a site), labelled from what the agent sees
    and its pose (a variable the view cannot tell is refused); clusters are episodes."""

    n_random: int = 400
    sample: Literal["generated", "on-policy"] = "generated"
    episodes: int = 200
    seed: int = 0
    per_rtg: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.per_rtg <= self.episodes:
            raise ConfigError(f"per_rtg must be in 1..episodes ({self.episodes}), got {self.per_rtg}")
        if self.sample not in ("generated", "on-policy"):
            raise ConfigError(f"probe states sample must be 'generated' or 'on-policy', got {self.sample!r}")

    @property
    def cluster_unit(self) -> str:
        return "poses" if self.sample == "generated" else "episodes"

    def states(self, subject: Subject) -> ProbeSet | ViewProbeSet:
        if self.sample == "on-policy":
            return self._on_policy(subject)
        key = ("feature-probe-set", self.n_random, subject.generation_seed, subject.model.cfg.max_timestep)
        if key not in subject._cache:
            subject._cache[key] = probe_set(
                seed=subject.derived_seed(0), n_random=self.n_random, max_timestep=subject.model.cfg.max_timestep
            )
        return subject._cache[key]

    def _on_policy(self, subject: Subject) -> ViewProbeSet:
        from dt_circuits.claims.evaluation.samples import rollout_states
        from dt_circuits.evaluation.pool import model_env
        from dt_circuits.features.data import RTGS

        key = ("feature-probe-set-on-policy", self.episodes, self.seed, self.per_rtg)
        if key not in subject._cache:
            parts = []
            for k, rtg in enumerate(RTGS):
                obs, rtgs, ts, poses, eps = rollout_states(subject, rtg, self.episodes, self.seed)
                keep = np.flatnonzero(eps < self.per_rtg)  # whole episodes, the first ones
                parts.append((obs[keep], rtgs[keep], ts[keep], poses[keep], eps[keep] + k * self.episodes))
            obs, rtgs, ts, poses, clusters = (np.concatenate(a) for a in zip(*parts, strict=True))
            subject._cache[key] = view_probe_set(obs, rtgs, ts, poses, clusters, model_env(subject.model))
        return subject._cache[key]


SubspaceReading = Literal["iia", "ablation", "steer", "f1"]
SUBSPACE_READINGS: tuple[str, ...] = ("iia", "ablation", "steer", "f1")
ProbeReading = Literal["accuracy", "majority", "control", "selectivity", "shuffled"]
READINGS: tuple[str, ...] = ("accuracy", "majority", "control", "selectivity", "shuffled")


@dataclass(frozen=True)
class Probe(OwnSample):
    """Held-out accuracy of a linear probe (scikit-learn logistic regression) reading ``variable`` at ``site``,
    each state classified by the probe of the pose-grouped fold that held its pose out.

    ``site``: a role, a component (``L0H1`` reads that head's ``hook_z``), a hook name (the state token), or
    ``"input"`` / ``"input (front cell)"`` (the encoded observation before any weight: the raw-input baseline).
    ``reading``: ``accuracy`` (the probe), ``majority`` (each fold's majority class: the baseline a probe must
    beat), ``control`` (the probe on a control task: a seeded random value per front-row type, Hewitt & Liang),
    ``selectivity`` (accuracy - control, per state) or ``shuffled`` (the probe trained and scored on the labels
    shuffled across states, seeded: the falsifiability control of a probe claim, which must fall to the majority
    class wherever the accuracy is the variable's and not the probe's capacity)."""

    on: ProbeStates
    site: str
    variable: str
    reading: ProbeReading = "accuracy"
    seed: int = 0

    def __post_init__(self) -> None:
        variable(self.variable)  # an unknown name fails when the claim is written
        if self.reading not in READINGS:
            raise ConfigError(f"unknown probe reading {self.reading!r}; valid: {', '.join(READINGS)}")

    def _features(self, subject: Subject, data: ProbeSet | ViewProbeSet) -> np.ndarray:
        if self.site == INPUT:
            return input_features(subject.model, data.inputs)
        if self.site == INPUT_FRONT:
            return front_cell_features(subject.model, data.inputs)
        return activations(subject.model, data.inputs, _site(subject, self.site)).numpy()

    def _shuffled(self, subject: Subject, data: ProbeSet | ViewProbeSet, key: tuple) -> np.ndarray:
        """Per state, whether the probe trained on shuffled labels predicts its shuffled label (held out)."""
        shuffled_key = ("feature-probe-shuffled", *key[1:])
        if shuffled_key not in subject._cache:
            y = data.labels(self.variable)
            rng = np.random.default_rng(subject.derived_seed(self.seed + 1))
            shuffled = y[rng.permutation(len(y))]
            pred, _ = cached_held_out_predictions(self._features(subject, data), shuffled, data.clusters)
            subject._cache[shuffled_key] = pred == shuffled
        return subject._cache[shuffled_key]

    def measure(self, subject: Subject) -> Measurement:
        data = self.on.states(subject)
        where = self.site if self.site in (INPUT, INPUT_FRONT) else str(_site(subject, self.site))
        key = ("feature-probe", where, self.variable, self.on, self.seed)
        if self.reading == "shuffled":  # its own fit: the real probe and the control task are not needed
            values = self._shuffled(subject, data, key).astype(float)
        else:
            if key not in subject._cache:
                x, y = self._features(subject, data), data.labels(self.variable)
                pred, major = cached_held_out_predictions(x, y, data.clusters)
                control = control_labels(y, data.types, subject.derived_seed(self.seed))
                control_pred, _ = cached_held_out_predictions(x, control, data.clusters)
                subject._cache[key] = (pred == y, major == y, control_pred == control)
            right, majority, control_right = subject._cache[key]
            values = {
                "accuracy": right.astype(float),
                "majority": majority.astype(float),
                "control": control_right.astype(float),
                "selectivity": right.astype(float) - control_right.astype(float),
            }[self.reading]
        label = self.site if self.site == where else f"{self.site} ({where})"
        unit, on_policy = self.on.cluster_unit, self.on.sample == "on-policy"
        describe = (
            f"probe {self.reading} for {self.variable} at {label}: {len(values)} held-out "
            f"{'on-policy ' if on_policy else ''}states in {len(np.unique(data.clusters))} {unit} "
            f"({unit[:-1]}-grouped folds)"
        )
        seed_key = "/".join(map(str, key[:3])) + ("/on-policy" if on_policy else "")
        return _pooled_by_pose(values, data.clusters, self.reading, describe, seed_key, unit, self.on.sample)

    @property
    def sample(self) -> str:  # type: ignore[override]
        """The sample the probe is scored on, as the results name it."""
        return self.on.sample


@dataclass(frozen=True)
class Subspace(OwnSample):
    """Interchange intervention accuracy of a one-dimensional (``k``) subspace at ``site`` for ``variable``, on
    held-out pairs: the subspace is found on the pairs of half the poses (DAS's learned rotation, a probe's
    direction, the best single neuron, or an SAE latent's decoder direction: ``method``) and tested on the other
    half's.

    Pairs (``ball_in_front`` only, so far): every pose of the ``on`` family (``obstacle-in-front``) in two seeded
    layouts, with the same state re-rendered without the ball in front, both directions, at ``on.rtg`` and a
    seeded timestep 0..30 shared by the pair (:func:`dt_circuits.features.data.ball_pairs`). Per held-out pair
    whose two actions differ: 1 if the base run with the site moved to the source's inside the subspace takes the
    source's action. ``on``'s rollout settings are not used (the pairs need a grid state)."""

    on: OnFamily
    site: str
    variable: str
    method: str = "das"
    k: int = 1
    layouts: int = 2
    steps: int = CLAIM_DAS_STEPS
    seed: int = 0
    #: ``iia``: interchange accuracy; ``ablation``: the behaviour change when the subspace is set to its mean
    #: where the variable is absent (the training pairs' ball-removed side), on the held-out states with the ball:
    #: ΔP(forward) per state, pooled by pose (does taking the feature away make the agent walk into the ball?);
    #: ``steer``: the other direction, the subspace set to its mean where the variable is present (the training
    #: pairs' ball side) on the held-out states *without* the ball (does writing the feature alone make the agent
    #: stop as before a ball? necessity and sufficiency are two claims); ``f1``: an SAE latent's firing
    reading: SubspaceReading = "iia"
    #: ``method="sae"``: the SAE also trains on the checkpoint's own states at ``on.rtg`` (the rollouts of ``on``'s
    #: episodes and seed, which the suite makes anyway; a seeded sample of at most
    #: :data:`~dt_circuits.features.sae.ON_POLICY_SAE_STATES`), beside the walk and the training pairs: a latent
    #: learnt only on generated states may split or merge what the agent actually meets
    own_states: bool = True

    def __post_init__(self) -> None:
        variable(self.variable)
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.reading not in SUBSPACE_READINGS:
            raise ConfigError(f"unknown subspace reading {self.reading!r}; valid: {', '.join(SUBSPACE_READINGS)}")
        if self.reading == "f1" and self.method != "sae":
            raise ConfigError(f"the f1 reading is an SAE latent's firing: method must be 'sae', got {self.method!r}")
        if (self.variable, self.on.family) != ("ball_in_front", "obstacle-in-front"):
            raise ConfigError(
                "Subspace has pairs for ball_in_front on the obstacle-in-front family only, got "
                f"{self.variable} on {self.on.family}"
            )

    def pairs(self, subject: Subject) -> Pairs:
        key = ("feature-pairs", self.layouts, self.on.rtg, subject.generation_seed, subject.model.cfg.max_timestep)
        if key not in subject._cache:
            subject._cache[key] = ball_pairs(
                seed=subject.derived_seed(0), layouts=self.layouts, rtg=self.on.rtg,
                max_timestep=subject.model.cfg.max_timestep,
            )  # fmt: skip
        return subject._cache[key]

    def measure(self, subject: Subject) -> Measurement:
        site = _site(subject, self.site)
        pairs = self.pairs(subject)
        train, test = pairs.split(subject.derived_seed(self.seed))
        fit = ("feature-basis", str(site), self.method, self.k, self.steps, self.seed, self.layouts, self.on.rtg)
        if self.method == "sae" and self.own_states:
            fit += ("own", self.on.episodes, self.on.seed)
        if fit not in subject._cache:
            if self.method == "sae":  # the SAE and its latent are kept for the f1 reading
                own = self._own_states(subject) if self.own_states else None
                subject._cache[fit] = sae_fit(subject.model, train, site, seed=self.seed, own=own)
            else:
                subject._cache[fit] = fit_basis(
                    subject.model, train, site, self.method, k=self.k, seed=self.seed, steps=self.steps, cache=True
                )
        fitted = subject._cache[fit]
        basis = fitted[2] if self.method == "sae" else fitted
        label = self.site if self.site == str(site) else f"{self.site} ({site})"
        if self.reading in ("ablation", "steer"):
            return self._set_to_mean(subject, site, train, test, basis, label, fit)
        if self.reading == "f1":
            return self._f1(subject, site, test, fitted[0], fitted[1], label, fit)
        key = ("feature-iia", *fit[1:])
        if key not in subject._cache:
            subject._cache[key] = interchange_correct(subject.model, test, site, basis)
        correct, rows = subject._cache[key]
        describe = (
            f"{self.method} IIA (k = {self.k}) for {self.variable} at {label}, RTG {self.on.rtg:g}: "
            f"{len(correct)} held-out pairs whose actions differ, of {len(test)}"
        )
        if len(correct) == 0:
            return _undefined("IIA", describe, "no held-out pair changes the model's action")
        return _pooled_by_pose(correct, test.clusters[rows], "IIA", describe, "/".join(map(str, key[:3])))

    def _own_states(self, subject: Subject) -> Any:
        """The SAE's share of the checkpoint's own states: every state its rollouts at ``on.rtg`` visited, or a
        seeded sample of them (whatever is in front: an SAE needs what the agent meets, not only the family)."""
        from dt_circuits.analysis.interventions import Inputs
        from dt_circuits.claims.evaluation.samples import rollout_states
        from dt_circuits.features.sae import own_rows

        obs, rtgs, ts, _, _ = rollout_states(subject, self.on.rtg, self.on.episodes, self.on.seed)
        keep = own_rows(np.arange(len(obs)), subject.derived_seed(self.seed))
        return Inputs.make(obs[keep], rtgs[keep], ts[keep])  # the pool refuses episodes beyond the time embedding

    def _set_to_mean(
        self, subject: Subject, site: Site, train: Pairs, test: Pairs, basis: Any, label: str, fit: tuple
    ) -> Measurement:
        """ΔP(forward) on held-out states when the subspace is set to its mean over the training pairs' states on
        the other side of the variable: ``ablation`` on the states with the ball, set to the ball-removed mean;
        ``steer`` on the ball-removed states, set to the mean with the ball. Per state, pooled by pose."""
        import torch

        from dt_circuits.analysis.interventions import run
        from dt_circuits.env.spec import Action
        from dt_circuits.features.das import subspace_set_logits

        steer = self.reading == "steer"
        source_side = 1 if steer else 0  # where the value is taken from; the states set are the other side's
        sides = np.concatenate([train.base_values, train.source_values]) == source_side
        acts = torch.cat([activations(subject.model, train.base, site), activations(subject.model, train.source, site)])
        value = (acts[torch.as_tensor(sides)] @ basis).mean(0)
        rows = np.flatnonzero(test.base_values == 1 - source_side)
        states = test.base[torch.as_tensor(rows)]
        fwd = int(Action.FORWARD)
        before = torch.softmax(run(subject.model, states), -1)[:, fwd]
        after = torch.softmax(subspace_set_logits(subject.model, states, site, basis, value), -1)[:, fwd]
        mean, where = ("mean with the ball", "without the ball") if steer else ("ball-removed mean", "with the ball")
        describe = (
            f"ΔP(forward) setting the {self.method} subspace (k = {self.k}) for {self.variable} at {label} to its "
            f"{mean}, RTG {self.on.rtg:g}: {len(rows)} held-out states {where}"
        )
        values = (after - before).double().numpy()
        key = "/".join(map(str, fit[:3])) + ("/steer" if steer else "")
        return _pooled_by_pose(values, test.clusters[rows], "ΔP(forward)", describe, key)

    def _f1(
        self, subject: Subject, site: Site, test: Pairs, sae: Any, latent: int, label: str, fit: tuple
    ) -> Measurement:
        """F1 of "the SAE latent fires" against the variable on the held-out pairs' base states (every held-out
        state once, with and without the ball), with a pose bootstrap of the ratio 2·TP / (2·TP + FP + FN)."""
        import torch

        from dt_circuits.analysis.stats import cluster_ratio_bootstrap

        with torch.no_grad():
            fires = (sae.encode(activations(subject.model, test.base, site))[:, latent] > 0).numpy()
        truth = test.base_values == 1
        tp, fp, fn = (fires & truth).astype(float), (fires & ~truth).astype(float), (~fires & truth).astype(float)
        num, den = 2 * tp, 2 * tp + fp + fn
        ids, inverse = np.unique(test.clusters, return_inverse=True)
        describe = (
            f"F1 of the SAE latent {latent} (chosen on the training pairs) for {self.variable} at {label}: "
            f"{len(truth)} held-out states in {len(ids)} poses"
        )
        if len(ids) < MIN_CLUSTERS or den.sum() == 0:
            return _undefined("F1", describe, f"{len(ids)} poses, {int(den.sum())} F1 counts")
        boot = cluster_ratio_bootstrap(num, den, inverse, n_resamples=N_BOOTSTRAP,
                                       seed=zlib.crc32("/".join(map(str, fit[:3])).encode()))  # fmt: skip
        pose_num, pose_den = np.bincount(inverse, weights=num), np.bincount(inverse, weights=den)
        per_pose = pose_num[pose_den > 0] / pose_den[pose_den > 0]
        return Measurement(
            per_pose, "F1", describe, estimate=float(num.sum() / den.sum()), draws=boot.draws, sample="generated",
            cluster_unit="poses",
        )  # fmt: skip
