"""Multiple comparisons: every tested check of a suite run shares one family-wise error rate.

A suite run makes many tests at once (each check with sampling error, on each of its state samples); at an
uncorrected 95 % each, some would clear their bound by chance. The run controls the family-wise error rate at
``ALPHA`` with Bonferroni simultaneous intervals: every tested check's interval is taken at confidence
``1 - ALPHA / family_size``, so all of them cover their true value together with probability >= 95 %. Each claim's
verdict then stays a function of its own checks (a pytest item evaluates one claim, ``dt-circuits claims`` all of
them, and the two must agree), which a step-down method (Holm) would not give. The family is every check of the
claims folder, not the ``-k`` / ``--only`` selection, so selecting claims never loosens a bound.

Weight readings (:class:`~dt_circuits.claims.claim.Weights`) are exact numbers with no sampling error: they are
not tests and not in the family. Non-primary ablation recipes are reported at the same level but do not decide
verdicts, so they are not in the family either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dt_circuits.claims.evaluation.claim_files import claim_files, import_claim_file
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR

if TYPE_CHECKING:
    from dt_circuits.claims.language.claim import Claim

ALPHA = 0.05
METHOD = "bonferroni"


@dataclass(frozen=True)
class Comparisons:
    """The family a check is tested in: family-wise error ``alpha`` over ``family_size`` tests."""

    family_size: int
    alpha: float = ALPHA
    method: str = METHOD

    def __post_init__(self) -> None:
        if self.family_size < 1:
            raise ConfigError(f"a family of tests needs at least one test, got {self.family_size}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")

    @property
    def check_alpha(self) -> float:
        """Each check's adjusted level (Bonferroni: alpha / family size)."""
        return self.alpha / self.family_size

    @property
    def confidence(self) -> float:
        """Confidence of each check's interval: the simultaneous intervals' per-check level."""
        return 1 - self.check_alpha

    def adjust(self, p_values: Sequence[float]) -> np.ndarray:
        """Adjusted p-values of the family's tests (statsmodels ``multipletests``), padded to the family size:
        a run of fewer tests than the family (a selection) is adjusted as if the rest were there.

        Bonferroni is statsmodels' own arithmetic (``p * m``, capped at 1; tested equal) without importing it:
        statsmodels and scipy.stats cost ~1.5 s of every claims run's start-up, for one multiplication."""
        p = np.asarray(list(p_values), dtype=float)
        if len(p) == 0:
            return p
        if len(p) > self.family_size:
            raise ConfigError(f"{len(p)} p-values for a family of {self.family_size} tests")
        if self.method == "bonferroni":
            return np.minimum(p * float(self.family_size), 1.0)
        from statsmodels.stats.multitest import multipletests

        padded = np.concatenate([p, np.ones(self.family_size - len(p))])
        return multipletests(padded, alpha=self.alpha, method=self.method)[1][: len(p)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "alpha": self.alpha,
            "family_size": self.family_size,
            "check_alpha": self.check_alpha,
            "check_confidence": self.confidence,
        }


def family_size(claims: Sequence[Claim]) -> int:
    """How many tests ``claims`` make: one per sample of every check that has sampling error."""
    return sum(len(check.measure_samples()) for claim in claims for check in claim.checks)


_DEFAULT: list[Comparisons] = []


def default_comparisons() -> Comparisons:
    """The family of the claims this package ships (what a claim evaluated on its own is tested in)."""
    if not _DEFAULT:
        shipped = [import_claim_file(p) for p in claim_files(BUILTIN_CLAIMS_DIR)]
        _DEFAULT.append(Comparisons(family_size(shipped)))
    return _DEFAULT[0]
