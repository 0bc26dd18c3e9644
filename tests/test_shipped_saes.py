"""The SAEs shipped with the claims (``claims/saes/``): every SAE the shipped claims read on the committed and
reference checkpoints is loaded, none trained; every shipped SAE is read by some claim; a shipped SAE is what
training gives (bit for bit on the CPU kind that trained it; as good a fit on another); a shipped file that is not
what it says is an error naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.suite.ship_saes import sae_claims
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.machine import machine_kind, same_kind
from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.features import sae as sae_lib
from dt_circuits.features import shipped_saes
from dt_circuits.features.localise import sae_fit


def _checkpoints(reference_path) -> dict[str, object]:
    return {"raw-index": CHECKPOINTS_DIR / "raw-index", "one-hot": CHECKPOINTS_DIR / "one-hot",
            "dti-reference": reference_path}  # fmt: skip


@pytest.fixture(scope="module")
def loaded(reference_path, tmp_path_factory):
    """Each checkpoint's SAE claims evaluated with training forbidden: the shipped folders they loaded."""
    from dt_circuits.core.cache import CACHE_ENV

    mp = pytest.MonkeyPatch()
    mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("empty-cache")))  # nothing from the disk cache either
    # (site_sae, not train_sae: the training code's source is part of a shipped SAE's identity)
    mp.setattr(sae_lib, "site_sae", lambda *a, **k: pytest.fail(
        "an SAE was trained: none shipped for its identity (on a CPU kind that did not ship it, the one input that "
        "could differ is the checkpoint's own rollout states)"))  # fmt: skip
    hits: dict[str, set] = {}
    original = shipped_saes.shipped_sae

    def spy(key):
        found = original(key)
        if found is not None:
            hits.setdefault(current[0], set()).add(shipped_saes._folder(key).name)
        return found

    mp.setattr(shipped_saes, "shipped_sae", spy)
    current = [""]
    verdicts = {}
    try:
        for name, path in _checkpoints(reference_path).items():
            current[0] = name
            subject = Subject.load(path)
            verdicts[name] = {c.id: c.evaluate(subject) for c in sae_claims()}
    finally:
        mp.undo()
    return hits, verdicts


def test_every_sae_a_shipped_claim_reads_is_shipped_and_loaded(loaded):
    hits, verdicts = loaded
    assert sae_claims(), "no shipped claim reads an SAE: nothing to ship"
    assert set(hits) == set(verdicts) and all(len(h) == 2 for h in hits.values()), hits  # obstacle and goal head


def test_every_shipped_sae_is_read_by_some_claim(loaded):
    hits, _ = loaded
    shipped = {p.name for p in shipped_saes.SHIPPED_SAES_DIR.iterdir() if p.is_dir()}
    assert shipped == set().union(*hits.values()), "shipped SAEs no claim reads (stale): rewrite them"


def test_a_shipped_sae_is_what_training_gives(monkeypatch, tmp_path):
    """The raw-index obstacle head's SAE trained again from the same inputs (nothing shipped, an empty cache): the
    same bytes on the CPU kind that trained it; on another kind (other activation bytes, so another fit) a fit as
    good on the same activations (FVU within 0.02)."""
    from dt_circuits.claims.measures.features import Subspace, _site
    from dt_circuits.core.cache import CACHE_ENV
    from dt_circuits.features.localise import activations
    from dt_circuits.features.sae import walk_inputs

    subject = Subject.load(CHECKPOINTS_DIR / "raw-index")
    (claim,) = [c for c in sae_claims() if c.id == "obstacle-head-ball-sae-latent"]
    measure = next(k.measure for k in claim.checks if isinstance(k.measure, Subspace) and k.measure.site ==
                   "obstacle_head")  # fmt: skip
    site = _site(subject, measure.site)
    train, _ = measure.pairs(subject).split(subject.derived_seed(measure.seed))
    own = measure._own_states(subject)  # the checkpoint's own states at the claim's RTG
    shipped = sae_fit(subject.model, train, site, seed=measure.seed, own=own)[0]
    inputs = [walk_inputs(subject.model, seed=measure.seed), train.base, train.source, own]
    key = shipped_saes.identity(subject.model, site, inputs, sae_lib.table_config(shipped.d_in, measure.seed))
    manifest = json.loads((shipped_saes._folder(key) / sae_lib.MANIFEST_FILE).read_text())
    assert manifest["checkpoint"] == "raw-index" and manifest["identity"]["site"]["head"] == 1
    assert "own states" in manifest["data"]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(shipped_saes, "shipped_sae", lambda key: None)
    fresh = sae_fit(subject.model, train, site, seed=measure.seed, own=own)[0]
    if same_kind(manifest["trained_on"], machine_kind()):
        for name, t in shipped.state_dict().items():
            assert torch.equal(t, fresh.state_dict()[name]), name
    else:
        walk = walk_inputs(subject.model, seed=measure.seed)
        acts = torch.cat([activations(subject.model, x, site) for x in (walk, train.base, train.source, own)])
        a, b = sae_lib.sae_metrics(shipped, acts)["fvu"], sae_lib.sae_metrics(fresh, acts)["fvu"]
        assert abs(a - b) <= 0.02, (a, b)


def test_a_shipped_folder_that_is_not_what_it_says_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_saes, "SHIPPED_SAES_DIR", tmp_path)
    key, other = {"weights_sha256": "a"}, {"weights_sha256": "b"}
    sae = sae_lib.TopKSAE(4, 8, 2)
    sae_lib.save_sae(shipped_saes._folder(key), sae, {"identity": other})
    with pytest.raises(ConfigError, match="another identity"):
        shipped_saes.shipped_sae(key)
    (shipped_saes._folder(key) / sae_lib.WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="does not load"):
        shipped_saes.shipped_sae(key)
    assert shipped_saes.shipped_sae({"weights_sha256": "c"}) is None and shipped_saes.shipped_sae(None) is None
    assert np.isfinite(sae.W_dec.detach().numpy()).all()
