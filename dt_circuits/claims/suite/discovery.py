"""Finding claims and checkpoints: claim files in a folder, the checkpoints a run defaults to.

Kept free of torch at import time: the pytest plugin asks it which files are claims in every run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from dt_circuits.claims.evaluation.claim_files import claim_files, import_claim_file
from dt_circuits.claims.evaluation.comparisons import Comparisons, family_size
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR

if TYPE_CHECKING:
    from dt_circuits.claims.language.claim import Claim


def load_claim(path: Path) -> Claim:
    """Import one claim file and return its ``CLAIM``; a file without a Claim there is a ConfigError naming it."""
    from dt_circuits.claims.language.claim import Claim  # torch: only when claims are loaded, not when listed

    claim = import_claim_file(path)
    if not isinstance(claim, Claim):
        raise ConfigError(f"claim file {path} does not define CLAIM = Claim(...)")
    return claim


def discover(directory: Path = BUILTIN_CLAIMS_DIR) -> list[Claim]:
    """Every claim in ``directory``, in file order. Ids must be unique; a folder with no claim is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"claims folder {directory} does not exist")
    files = claim_files(directory)
    if not files:
        raise ConfigError(f"no claim files in {directory} (a claim file is a .py defining CLAIM = Claim(...))")
    claims = [load_claim(path) for path in files]
    ids = [c.id for c in claims]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ConfigError(f"duplicate claim id(s) in {directory}: {', '.join(sorted(dupes))}")
    return claims


def select_claims(only: list[str] | None = None, directory: Path = BUILTIN_CLAIMS_DIR) -> list[Claim]:
    """Every discovered claim, or just the ids in ``only`` (an unknown id is a ConfigError naming it)."""
    claims = discover(directory)
    if not only:
        return claims
    unknown = set(only) - {c.id for c in claims}
    if unknown:
        raise ConfigError(f"unknown claim id(s): {', '.join(sorted(unknown))}")
    return [c for c in claims if c.id in only]


def rollout_requests(claims: list[Claim]) -> list[tuple[float, int, int]]:
    """Every (rtg, episodes, seed) the claims' checks will roll out (rollout checks, and the on-policy samples and
    matched timesteps of state checks), so they run as one parallel batch."""
    from dt_circuits.claims.evaluation.measurement import PerStateMeasure
    from dt_circuits.claims.measures.rollouts import Rollouts

    out = []
    for claim in claims:
        for check in claim.checks:
            m = check.measure
            if isinstance(m, Rollouts):
                out.append((m.rtg, m.episodes, m.seed))
            elif isinstance(m, PerStateMeasure):
                out.append((m.on.rtg, m.on.episodes, m.on.seed))
    return out


def for_claims_dir(directory: Path) -> Comparisons:
    """The family of every claim in ``directory`` (what the plugin adjusts each check for, whatever ``-k``
    selects). A folder whose claims make no test at all (weight readings only: no sampling error) is a family of
    one, which adjusts nothing; it used to be an error."""
    return Comparisons(max(1, family_size(discover(directory))))


__all__ = ["claim_files", "discover", "for_claims_dir", "load_claim", "rollout_requests", "select_claims"]


def default_checkpoints() -> list[str]:
    """The checkpoints this package ships, then the DTI reference when shared/ has it. In this project's own
    checkout under CI the reference is always listed, so a missing ../shared fails loudly there."""
    from dt_circuits.core.paths import in_checkout, memory_reference_checkpoint, own_checkpoints, reference_checkpoint

    paths = [str(p) for p in own_checkpoints()]
    for ref in (reference_checkpoint(), memory_reference_checkpoint()):
        if ref.exists() or (os.environ.get("CI") and in_checkout()):
            paths.append(str(ref))
    return paths


def checkpoint_family(path: str) -> str | None:
    """The env family of a checkpoint read without loading weights (our manifest's env id, or a published
    file's name); None when only loading it would tell."""
    import json

    from dt_circuits.core.paths import memory_reference_checkpoint, reference_checkpoint
    from dt_circuits.env.spec import ENVS

    p = Path(path)
    names = {reference_checkpoint().name: "dynamic-obstacles", memory_reference_checkpoint().name: "memory"}
    if p.suffix == ".pt":
        return names.get(p.name)
    try:
        env_id = json.loads((p / "manifest.json").read_text())["env"]["env_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ENVS[env_id][0] if env_id in ENVS else None
