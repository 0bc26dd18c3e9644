"""SAEs shipped with the claims that read them: trained once, loaded by every run on either CPU kind.

An SAE a claim reads (``Subspace(method="sae")``) is trained on the model's activations, whose float bytes differ
between CPU kinds: retrained on another kind it is another SAE, so the claim's numbers would move with the machine,
and every first run paid its training (~3.5 s an SAE on the Intel Xeon). Shipped, an SAE is a fixed artifact like a
checkpoint: ``claims/saes/<id>/sae.safetensors`` and ``sae.json`` (:func:`~dt_circuits.features.sae.save_sae`) with
its identity — the checkpoint's weights sha256, the site, the digest of the training *inputs* (observations, RTGs,
timesteps: integer data, the same on every kind), the seed and config, the training code's hash — and the CPU kind
that trained it. A run loads a shipped SAE only when the identity it would train under is exactly the stored one,
whatever its own CPU kind; otherwise it trains its own (disk-cached). ``python -m dt_circuits.claims.suite.ship_saes
CHECKPOINT...`` (:mod:`dt_circuits.claims.suite.ship_saes`) writes the SAEs the shipped claims read there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dt_circuits.core.cache import source_key
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR
from dt_circuits.features.das import inputs_digest

if TYPE_CHECKING:
    from dt_circuits.analysis.interventions import Inputs
    from dt_circuits.dt.model import DecisionTransformer
    from dt_circuits.features.sae import SAEConfig, TopKSAE
    from dt_circuits.features.sites import Site

#: where the shipped claims' SAEs live (package data of the shipped claims)
SHIPPED_SAES_DIR = BUILTIN_CLAIMS_DIR / "saes"
#: non-empty while :mod:`~dt_circuits.claims.suite.ship_saes` runs the claims: every SAE trained then is written
#: into the shipped folder (and its folder appended here)
_RECORDING: list[Path] = []


def identity(model: DecisionTransformer, site: Site, inputs: list[Inputs], cfg: SAEConfig) -> dict[str, Any] | None:
    """What an SAE trained by :func:`~dt_circuits.features.sae.train_sae` on ``inputs``' activations at ``site`` is a
    function of, on any CPU kind; None when the training code cannot be read (nothing to check a file against)."""
    from dt_circuits.dt.model import weights_digest
    from dt_circuits.features import sae as sae_lib

    code = source_key(sae_lib.train_sae, sae_lib.TopKSAE, sae_lib.SAEConfig, libraries=())
    if code is None:
        return None
    return {
        "weights_sha256": weights_digest(model),
        "site": {"hook": site.hook, "head": site.head, "pos": site.pos},
        "inputs": inputs_digest(*inputs),
        "config": asdict(cfg),
        "code": code["code"],
    }


def _folder(key: dict[str, Any]) -> Path:
    text = json.dumps(key, sort_keys=True)
    return SHIPPED_SAES_DIR / hashlib.sha256(text.encode()).hexdigest()[:24]


def shipped_sae(key: dict[str, Any] | None) -> TopKSAE | None:
    """The shipped SAE of exactly ``key``, or None (none shipped for it). A shipped folder that does not load, or
    whose stored identity is another's, is an error naming the folder: shipped files are never silently skipped."""
    from dt_circuits.features.sae import load_sae

    if key is None or _RECORDING:  # shipping trains every SAE afresh
        return None
    folder = _folder(key)
    if not folder.exists():
        return None
    sae, manifest = load_sae(folder)
    if manifest.get("identity") != key:
        raise ConfigError(
            f"{folder}: a shipped SAE whose manifest names another identity; rewrite the shipped SAEs "
            "(python -m dt_circuits.claims.suite.ship_saes)"
        )
    return sae


def record(key: dict[str, Any] | None, sae: TopKSAE, model: DecisionTransformer, describe: str) -> None:
    """While SAEs are being shipped, write a freshly trained SAE into the shipped folder with its identity."""
    if not _RECORDING or key is None:
        return
    from dt_circuits.core.machine import machine_kind
    from dt_circuits.features.sae import save_sae

    info = getattr(model, "checkpoint_info", None)
    manifest = {"identity": key, "checkpoint": info.name if info else None, "trained_on": machine_kind(),
                "data": describe}  # fmt: skip
    folder = save_sae(_folder(key), sae, manifest)
    _RECORDING.append(folder)
