"""Write the SAEs the shipped claims read on the given checkpoints into ``claims/saes/``
(:mod:`dt_circuits.features.shipped_saes`): ``python -m dt_circuits.claims.suite.ship_saes CHECKPOINT...``.

Every claim with an SAE reading runs on each checkpoint with the disk cache off, so each SAE is trained here, on this
machine, and written with its identity and this CPU kind. Re-run after a change to the SAE's training code or data
(``tests/test_shipped_saes.py`` fails until then).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.features import Subspace
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.claims.suite.run import applicable, run_claim
from dt_circuits.features import shipped_saes


def sae_claims() -> list:
    """The shipped claims with a check that reads an SAE."""
    return [c for c in discover() if any(isinstance(k.measure, Subspace) and k.measure.method == "sae"
                                         for k in c.checks)]  # fmt: skip


def ship(checkpoints: list[str]) -> list[Path]:
    """Run the SAE claims on each checkpoint, training every SAE they read, and return the folders written."""
    saved = os.environ.get("DT_CIRCUITS_CACHE")
    os.environ["DT_CIRCUITS_CACHE"] = "off"  # train every SAE here, from nothing
    shipped_saes._RECORDING[:] = [shipped_saes.SHIPPED_SAES_DIR]  # recording on
    try:
        for path in checkpoints:
            subject = Subject.load(path)
            for claim in applicable(sae_claims(), subject):
                run_claim(claim, subject)
        return shipped_saes._RECORDING[1:]
    finally:
        shipped_saes._RECORDING.clear()
        if saved is None:
            os.environ.pop("DT_CIRCUITS_CACHE", None)
        else:
            os.environ["DT_CIRCUITS_CACHE"] = saved


if __name__ == "__main__":
    from dt_circuits.core.threads import configure_threads

    configure_threads()  # the claims' thread policy (the CLI's and the tests'): a fit's bytes depend on it
    for folder in ship(sys.argv[1:]):
        print(f"wrote {folder}")
