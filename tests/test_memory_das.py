"""DAS in a window model's state-embedding space (features/embed_das.py) and the claim built on it
(``memory-das-instruction-pc0``): known truth on the hand-set twins of dt/handset_memory.py, one reading the
instruction along PC0 and one elsewhere, with the same behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.analysis.memory import instruction_pca
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.memory import InstructionDAS
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.handset import ball_avoider
from dt_circuits.dt.handset_memory import CELL, KEY_BALL, READ, instruction_reader
from dt_circuits.features.embed_das import differing, embed_das, instruction_directions, swap_correct
from dt_circuits.features.memory_data import instruction_pairs, memory_probe_set

CLAIM = next(c for c in discover() if c.id == "memory-das-instruction-pc0")
#: one worker: the twins' DAS fits (~8 s each) are computed once and read back from the disk cache by the other tests
#: here; on two workers at once, both would fit them
pytestmark = pytest.mark.xdist_group("memory-das")


@pytest.fixture(scope="module")
def twins():
    return {read: instruction_reader(read) for read in ("pc0", "elsewhere")}


@pytest.fixture(scope="module")
def pairs(twins):
    return differing(twins["pc0"], instruction_pairs(twins["pc0"]))


def test_the_twins_behave_identically_and_differ_in_pc0(twins):
    windows = memory_probe_set(twins["pc0"]).windows
    with torch.no_grad():
        a, b = (twins[r](*windows.args) for r in ("pc0", "elsewhere"))
    torch.testing.assert_close(a, b)
    assert len(set(a.argmax(-1).tolist())) == 2, "the twins' behaviour does not depend on the instruction at all"
    assert abs(float(instruction_pca(twins["pc0"]).key_minus_ball_direction[KEY_BALL])) > 0.99
    assert abs(float(instruction_pca(twins["elsewhere"]).key_minus_ball_direction[CELL])) > 0.99


@pytest.mark.parametrize(("read", "dim", "unread"), [("pc0", KEY_BALL, CELL), ("elsewhere", READ, CELL)])
def test_das_finds_the_direction_each_twin_reads(twins, read, dim, unread):
    """Each split's fit (the claim's own: instruction_directions) lies along what the twin reads, not along the
    direction the instruction embeddings merely vary in; dimensions that carry no difference between a pair's
    windows are free (the swap moves nothing along them: what is left of the rotation's random start stays), so
    the fit is mostly, not exactly, the read dimension."""
    _, fits = instruction_directions(twins[read])
    for q, test in fits:
        assert abs(float(q[dim])) > 0.8 and abs(float(q[unread])) < 0.5, f"DAS direction {q.tolist()}"
        correct, _ = swap_correct(twins[read], test, q)
        assert len(correct) > 50 and correct.mean() > 0.95
        # the direction the embeddings vary in, when the model does not read it, swaps nothing: IIA 0
        if read == "elsewhere":
            other = torch.zeros_like(q)
            other[CELL] = 1.0
            assert swap_correct(twins[read], test, other)[0].mean() == 0.0


def test_claim_holds_where_the_model_reads_pc0_and_fails_only_on_the_cosine_elsewhere(twins):
    held = CLAIM.evaluate(Subject.from_model(twins["pc0"], name="reads PC0"))
    assert held.holds, held.summary()
    other = CLAIM.evaluate(Subject.from_model(twins["elsewhere"], name="reads elsewhere"))
    assert not other.holds
    failing = {c.name for c in other.checks if not c.holds}
    assert failing == {"|cos(DAS instruction direction, PC0)| per split"}, other.summary()
    cos = next(c for c in other.checks if c.name.startswith("|cos"))
    assert cos.ci_high < 0.5  # PC0 is the cell offset there, orthogonal to what is read


def test_cosine_is_one_draw_per_split(twins):
    m = InstructionDAS("cosine").measure(Subject.from_model(twins["pc0"]))
    assert m.draws is not None and len(m.draws) == 3 and np.all(m.draws > 0.8)


def test_bad_inputs_are_one_line_errors(twins, pairs):
    with pytest.raises(ConfigError, match="window model"):
        embed_das(ball_avoider("head1"), pairs)
    with pytest.raises(ConfigError, match="at least one optimisation step"):
        embed_das(twins["pc0"], pairs, steps=0)
    same = pairs.subset(np.arange(4))
    same = type(same)(same.base, same.base, same.clusters, same.base_values, same.source_values)
    with pytest.raises(ConfigError, match="no pair's windows differ"):
        differing(twins["pc0"], same)


# -- the claim's fits, shipped (claims/das) ---------------------------------------------------------------------------


def test_the_claims_instruction_fits_are_shipped_and_read_without_fitting(memory_model, tmp_path, monkeypatch):
    """On MemoryDT the claim reads the shipped fits on any CPU kind: nothing is fitted, nothing comes from the cache;
    every shipped fit is one the claim reads (none stale)."""
    from dt_circuits.core.cache import CACHE_ENV
    from dt_circuits.features import embed_das as lib

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    # the fit's code is part of the identity, so the trap is set below it: the rotation DAS optimises
    monkeypatch.setattr(torch.nn.utils.parametrizations, "orthogonal", lambda *a, **k: pytest.fail("fitted"))
    pairs, fits = instruction_directions(memory_model)
    assert len(fits) == lib.SPLITS and not any(tmp_path.iterdir())
    identity = lib.instruction_identity(memory_model, pairs, splits=lib.SPLITS, steps=lib.STEPS,
                                        train_pairs=lib.TRAIN_PAIRS)  # fmt: skip
    from dt_circuits.core.cache import _key_text, _path

    (shipped,) = lib.SHIPPED_DAS_DIR.glob("*.npz")
    assert shipped == _path(lib.SHIPPED_DAS_DIR, "instruction-das", _key_text("instruction-das", identity))


def test_a_shipped_instruction_fit_is_what_fitting_gives(memory_model):
    """Split 0's direction fitted again here: the same bytes on the CPU kind that fitted the shipped ones; on another
    kind (other float bytes, so another optimisation path) a direction within 0.9 |cos| of the shipped one."""
    import json

    from dt_circuits.core.machine import machine_kind, same_kind
    from dt_circuits.features import embed_das as lib

    pairs, fits = instruction_directions(memory_model)
    (path,) = lib.SHIPPED_DAS_DIR.glob("*.npz")
    with np.load(path, allow_pickle=False) as npz:
        trained_on = json.loads(str(npz["trained_on"]))
    fresh = torch.from_numpy(lib.split_direction(memory_model, pairs.split(0)[0], 0, steps=lib.STEPS,
                                                 train_pairs=lib.TRAIN_PAIRS))  # fmt: skip
    if same_kind(trained_on, machine_kind()):
        assert torch.equal(fresh, fits[0][0])
    else:
        assert abs(float(fresh @ fits[0][0])) >= 0.9
