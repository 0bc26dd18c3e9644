"""Linear probes at a site: held-out accuracy under a cluster split, against the majority class, a probe on the
model's input, and a control task (selectivity).

- **Cluster split**: rows of one agent pose are not independent (their views differ only by balls), so folds
  are ``GroupKFold`` over poses: no pose is ever both trained and tested on.
- **Control task** (Hewitt & Liang 2019): each *type* (the caller's label of what the input looks like locally,
  e.g. the front row of the view) gets a seeded random value, drawn with the variable's own class frequencies.
  A probe can score on it only by memorising types; selectivity = task accuracy − control accuracy says how
  much of the accuracy is the variable rather than the probe's capacity.
- scikit-learn's logistic regression (lbfgs, standardised inputs): deterministic, no hand-written optimiser.
  Fitted with one BLAS thread: these fits are tiny, and OpenBLAS's two threads beside other work made one fit
  28x slower here (7.2 s against 0.26 s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from dt_circuits.core.errors import ConfigError

#: folds of the cluster split (fewer when there are fewer clusters)
FOLDS = 5
#: inverse L2 strength of the logistic regression on standardised inputs
C = 1.0


@dataclass(frozen=True)
class ProbeResult:
    """Held-out accuracies of one variable at one site (pooled over the cluster folds)."""

    accuracy: float
    majority: float
    control: float
    n: int
    n_clusters: int

    @property
    def selectivity(self) -> float:
        return self.accuracy - self.control

    def to_json(self) -> dict[str, float | int]:
        return {**asdict(self), "selectivity": self.selectivity}


def _check(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
    if x.ndim != 2 or y.shape != (x.shape[0],) or groups.shape != (x.shape[0],):
        raise ConfigError(f"probe data: x {x.shape}, labels {y.shape}, groups {groups.shape} do not match")
    if len(np.unique(groups)) < 2:
        raise ConfigError("a cluster split needs at least two clusters")


def _classifier():
    # scikit-learn is imported where a probe is fitted: ~1 s that every claims run paid at start-up otherwise
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def _fit(x: np.ndarray, y: np.ndarray):
    with threadpool_limits(limits=1):
        return _classifier().fit(x, y)


def held_out_predictions(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probe predictions, majority-class predictions) for every row, each from the fold that held it out."""
    x, y, groups = np.asarray(x, np.float64), np.asarray(y), np.asarray(groups)
    _check(x, y, groups)
    pred, major = np.empty_like(y), np.empty_like(y)
    from sklearn.model_selection import GroupKFold

    for train, test in GroupKFold(n_splits=min(FOLDS, len(np.unique(groups)))).split(x, y, groups):
        values, counts = np.unique(y[train], return_counts=True)
        major[test] = values[np.argmax(counts)]
        if len(values) == 1:
            pred[test] = values[0]
        else:
            pred[test] = _fit(x[train], y[train]).predict(x[test])
    return pred, major


def cached_held_out_predictions(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`held_out_predictions` once per (x, y, groups) on this machine: the key is the inputs' own digest, this
    module's code, the library versions and the CPU kind (the disk cache, :mod:`dt_circuits.core.cache`). A claim
    fits the same probes on the same activations every run; the folds' fits are most of its time."""
    import sys

    from dt_circuits.core.cache import array_digest, cached_arrays, fit_key

    x, y, groups = np.asarray(x, np.float64), np.asarray(y), np.asarray(groups)

    def fit() -> dict[str, np.ndarray]:
        pred, major = held_out_predictions(x, y, groups)
        return {"pred": pred, "major": major}

    code = sys.modules[__name__]
    key = fit_key(code, libraries=("numpy", "scipy", "scikit-learn"), inputs=array_digest(x, y, groups))
    arrays = cached_arrays("probe-predictions", key, fit)
    return arrays["pred"], arrays["major"]


def control_labels(y: np.ndarray, types: np.ndarray, seed: int) -> np.ndarray:
    """A control task: one seeded random value per type, drawn with ``y``'s class frequencies."""
    y, types = np.asarray(y), np.asarray(types)
    if types.shape[0] != y.shape[0]:
        raise ConfigError(f"{types.shape[0]} types for {y.shape[0]} labels")
    values, counts = np.unique(y, return_counts=True)
    kinds, inverse = np.unique(types.reshape(len(types), -1), axis=0, return_inverse=True)
    rng = np.random.default_rng(seed)
    per_type = rng.choice(values, size=len(kinds), p=counts / counts.sum())
    return per_type[inverse.ravel()]


def probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray, types: np.ndarray, *, seed: int = 0) -> ProbeResult:
    """Held-out accuracy of a linear probe for ``y`` from ``x``, its majority baseline and its control accuracy."""
    y = np.asarray(y)
    pred, major = held_out_predictions(x, y, groups)
    control = control_labels(y, types, seed)
    control_pred, _ = held_out_predictions(x, control, groups)
    return ProbeResult(
        accuracy=float(np.mean(pred == y)),
        majority=float(np.mean(major == y)),
        control=float(np.mean(control_pred == control)),
        n=int(len(y)),
        n_clusters=int(len(np.unique(groups))),
    )


def probe_direction(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The unit direction, in ``x``'s own coordinates, along which a binary probe trained on all rows reads ``y``
    (the logistic regression's normal, undone from the standardisation)."""
    x, y = np.asarray(x, np.float64), np.asarray(y)
    if len(np.unique(y)) != 2:
        raise ConfigError(f"a probe direction needs a binary variable, got values {np.unique(y).tolist()}")
    clf = _fit(x, y)
    scaler, lr = clf[0], clf[1]
    w = lr.coef_[0] / np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    norm = np.linalg.norm(w)
    if norm == 0:
        raise ConfigError("the probe found no direction (all weights zero)")
    return w / norm
