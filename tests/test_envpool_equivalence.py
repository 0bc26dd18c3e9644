"""The EnvPool backend is trusted only as far as these tests prove it equivalent to Farama Minigrid (issue 14).

(a) Step alignment: EnvPool envs and Minigrid twins in lock-step from the same start state, obstacle moves copied
    across after a legality check (``tests/envpool_lockstep.py``): observations, rewards, poses and
    terminated/truncated identical, under random actions and under a checkpoint's actions.
(b) Distributions: EnvPool's obstacle moves against Minigrid's exact sampling law on the lock-step states, and
    episode outcomes under fixed policies on independent episodes.
(c) Table-1 rates and calibration means of the checkpoints under EnvPool against Minigrid.

Every test's alpha is 0.01 with Bonferroni inside the test, so a false alarm anywhere in the file is < 6 %
over the whole file only if something is truly different; the power each test has is stated with it. The
lock-step runs 100k steps (50k random, 50k checkpoint) in two processes side by side; ``-m envpool_full`` adds the
21-RTG calibration comparison (deselected by default: it does not fit the suite's 15-minute budget).
The one known difference, an episode ending on exactly its last allowed step being ``(terminated, truncated) =
(True, True)`` in Minigrid and ``(False, True)`` in EnvPool, is counted, not hidden: rollouts classify episodes by
their last reward, so it changes no outcome.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from scipy import stats

try:
    import envpool  # noqa: F401
except ImportError as exc:
    _msg = f"envpool is not importable ({exc}): pip install envpool (a dependency of dt-circuits)"
    if os.environ.get("CI"):
        pytest.fail(_msg, pytrace=False)
    pytest.skip(_msg, allow_module_level=True)

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.env.spec import Action, EnvSpec
from dt_circuits.evaluation.envpool_rollout import envpool_seed, make_pool
from dt_circuits.evaluation.pool import evaluate_rtgs
from dt_circuits.evaluation.rollout import episode_seeds, rollout
from dt_circuits.evaluation.rtgs import TABLE1_RTGS
from tests.envpool_lockstep import OFFSETS, STAY, lockstep_parallel, stay_probability
from tests.helpers import random_model

#: one worker for the module: its session lockstep fixtures (~30 s each) are shared by three tests (CI showed them
#: paid on both workers without this mark; see the root conftest on scheduling)
pytestmark = pytest.mark.xdist_group("tests/test_envpool_equivalence.py")

ALPHA = 0.01
#: lock-step steps (random actions, checkpoint actions): the issue's >= 100k in all
STEPS_RANDOM, STEPS_CHECKPOINT = 50_000, 50_000


@pytest.fixture(scope="session")
def lockstep_runs():
    """Both lock-step runs at once, one per process: random actions at max_steps 20 (many time-outs, and episodes
    ending on their last step), and raw-index's sampled actions at max_steps 300."""
    return lockstep_parallel(
        [
            {"max_steps": 20, "steps": STEPS_RANDOM, "n_envs": 32, "seed": 1, "checkpoint": None},
            {"max_steps": 300, "steps": STEPS_CHECKPOINT, "n_envs": 48, "seed": 2,
             "checkpoint": str(CHECKPOINTS_DIR / "raw-index")},
        ]
    )  # fmt: skip


@pytest.fixture(scope="session")
def lock_random(lockstep_runs):
    return lockstep_runs[0]


@pytest.fixture(scope="session")
def lock_checkpoint(lockstep_runs):
    return lockstep_runs[1]


def _assert_aligned(mism, moves) -> None:
    assert not moves.illegal, f"EnvPool made obstacle moves Minigrid cannot: {moves.illegal[:3]}"
    assert mism.total == 0, f"{mism.total} mismatches in {mism.steps} steps: {mism.examples}"


# -- (a) step alignment -----------------------------------------------------------------------------------------
def test_lockstep_random_actions(lock_random):
    """Uniform random actions at max_steps 20 (every outcome, many last-step endings): identical steps."""
    mism, moves = lock_random
    _assert_aligned(mism, moves)
    assert mism.steps >= STEPS_RANDOM and mism.episodes > 1000
    assert mism.last_step_flags > 0  # the known flag difference does occur here, and is the only one


def test_lockstep_checkpoint_actions(lock_checkpoint):
    """raw-index's sampled actions at RTGs −1, 0, 0.9 (collisions, goals, 300-step time-outs): identical steps."""
    mism, moves = lock_checkpoint
    _assert_aligned(mism, moves)
    assert mism.steps >= STEPS_CHECKPOINT and mism.episodes > 50


def test_lockstep_totals_at_least_100k_steps(lock_random, lock_checkpoint):
    assert lock_random[0].steps + lock_checkpoint[0].steps >= 100_000


# -- (b) distributions ------------------------------------------------------------------------------------------
def move_law(free: np.ndarray) -> np.ndarray:
    """Minigrid's probability of each 3×3 offset per move given its free offsets: place_obj draws cells of the 3×3
    block uniformly until one is free and not the agent's (101 tries), else the obstacle stays."""
    n_free = free.sum(axis=1)
    stay = stay_probability(n_free)
    p = np.where(free, ((1 - stay) / np.maximum(n_free, 1))[:, None], 0.0)
    p[:, STAY] += stay
    return p


def test_obstacle_moves_follow_minigrids_sampler(lock_random, lock_checkpoint):
    """Every offset of the 3×3 neighbourhood, ≥ 1e5 moves drawn by EnvPool, against Minigrid's sampling law at the
    same states (the lock-step's).

    Test 1 (offsets): Wald χ² of observed − expected offset counts, covariance Σ_t (diag p_t − p_t p_tᵀ) (the moves
    are conditionally independent given the states, a martingale CLT), df = its rank (8). Power: with ≥ 1.6e5
    moves a shift of Cohen's w = 0.0085 in the offset distribution (λ = 11.7 ... at α 0.005, df 8) is found with
    probability 0.8.
    Test 2 (which free cell): given k ≥ 2 free cells and a move, the cell taken is uniform among them; χ²
    goodness of fit of the taken cell's rank per k, summed over k (df Σ(k − 1)).
    Each at α 0.005 (0.01 Bonferroni-split)."""
    free, taken = (np.concatenate(x) for x in zip(lock_random[1].arrays(), lock_checkpoint[1].arrays(), strict=True))
    assert len(taken) >= 100_000 and (taken >= 0).all()
    p = move_law(free)
    observed = np.bincount(taken, minlength=9).astype(float)
    expected = p.sum(axis=0)
    # staying put needs all 8 neighbours blocked (or 101 failed draws): expected ~0 times with 4 balls on 6×6, so
    # it is tested on its own (Poisson, below) and the Wald test runs on the 8 moves (df 7)
    keep = [k for k in range(9) if k != STAY or expected[STAY] >= 5]
    cov = (np.diag(expected) - p.T @ p)[np.ix_(keep, keep)]
    diff = (observed - expected)[keep]
    wald = float(diff @ np.linalg.pinv(cov) @ diff)
    df = int(np.linalg.matrix_rank(cov))
    p_offsets = float(stats.chi2.sf(wald, df))
    moving = [k for k in range(9) if k != STAY]
    assert (observed[moving] > 0).all(), f"not every move seen: {observed}"

    moved = taken != STAY
    n_free = free.sum(axis=1)
    rank = (np.cumsum(free, axis=1) - 1)[np.arange(len(taken)), taken]
    chi2_rank, df_rank = 0.0, 0
    for k in range(2, 9):
        sel = moved & (n_free == k)
        if sel.sum() < 5 * k:
            continue
        counts = np.bincount(rank[sel], minlength=k)
        chi2_rank += float(stats.chisquare(counts).statistic)
        df_rank += k - 1
    p_rank = float(stats.chi2.sf(chi2_rank, df_rank))
    stays_with_room = int(((taken == STAY) & (n_free > 0)).sum())
    expected_stays = float(stay_probability(n_free[n_free > 0]).sum())
    p_stays = float(stats.poisson.sf(stays_with_room - 1, expected_stays)) if stays_with_room else 1.0
    print(f"\nobstacle moves {len(taken)}: offsets Wald χ² {wald:.2f} df {df} p {p_offsets:.3f}; "
          f"rank χ² {chi2_rank:.2f} df {df_rank} p {p_rank:.3f}; stays with a free cell {stays_with_room} "
          f"(expected {expected_stays:.3f}); observed {observed.astype(int).tolist()} "
          f"expected {np.round(expected).astype(int).tolist()}")  # fmt: skip
    assert p_offsets > ALPHA / 2 and p_rank > ALPHA / 2 and p_stays > ALPHA / 2


def fixed_policy_episodes(backend: str, policy: str, n: int, spec: EnvSpec) -> tuple[np.ndarray, np.ndarray]:
    """(outcome code 0 goal / 1 collision / 2 timeout, length) of ``n`` episodes of a scripted policy."""
    seeds = [episode_seeds(7, e)[0] for e in range(n)]
    rng = np.random.default_rng(7)
    out, lengths = np.zeros(n, np.int64), np.zeros(n, np.int64)

    def act(m: int) -> np.ndarray:
        return np.full(m, Action.FORWARD) if policy == "forward" else rng.integers(0, 3, m)

    if backend == "minigrid":
        env = spec.make()
        for e, s in enumerate(seeds):
            env.reset(seed=s)
            t, done = 0, False
            while not done:
                _, r, te, tr, _ = env.step(int(act(1)[0]))
                t, done = t + 1, te or tr
            out[e], lengths[e] = (0 if r > 0 else 1 if r < 0 else 2), t
        return out, lengths
    pool = make_pool(spec, [envpool_seed(s) for s in seeds])
    pool.reset()
    active = np.arange(n)
    t = np.zeros(n, np.int64)
    while len(active):
        _, r, te, tr, info = pool.step(act(len(active)), env_id=active)
        ids = np.asarray(info["env_id"])
        t[ids] += 1
        end = np.asarray(te) | np.asarray(tr)
        out[ids[end]] = np.where(r[end] > 0, 0, np.where(r[end] < 0, 1, 2))
        lengths[ids[end]] = t[ids[end]]
        active = np.setdiff1d(active, ids[end])
    return out, lengths


@pytest.mark.parametrize(("policy", "n"), [("forward", 2000), ("uniform", 1500)])
def test_outcomes_under_fixed_policies(policy, n):
    """Independent episodes (n per backend) of always-forward and uniform-random play at max_steps 300.

    Outcomes (goal / collision / timeout) and episode lengths (binned 1, 2, ..., 9, 10–19, 20+) compared by χ²
    contingency tests (Fisher's exact test when a table is 2×2 or sparse), each at α 0.005. Power (n = 1500 per
    arm): a collision-rate difference of 0.05 around 0.9 is found with probability ≈ 0.95; always-forward can only
    collide, so its lengths (where the first ball or the wall is) carry the comparison."""
    spec = EnvSpec(max_steps=300)
    (o_m, l_m), (o_e, l_e) = (fixed_policy_episodes(b, policy, n, spec) for b in ("minigrid", "envpool"))
    pvalues = {}
    outcomes = np.array([np.bincount(o_m, minlength=3), np.bincount(o_e, minlength=3)])
    outcomes = outcomes[:, outcomes.sum(axis=0) > 0]
    if outcomes.shape[1] == 2:
        pvalues["outcomes"] = float(stats.fisher_exact(outcomes).pvalue)
    elif outcomes.shape[1] > 2:
        pvalues["outcomes"] = float(stats.chi2_contingency(outcomes).pvalue)
    bins = [*range(1, 11), 20, 10**6]
    lengths = np.array([np.histogram(x, bins=bins)[0] for x in (l_m, l_e)])
    lengths = lengths[:, lengths.sum(axis=0) >= 10]
    pvalues["lengths"] = float(stats.chi2_contingency(lengths).pvalue)
    print(f"\n{policy}: minigrid {np.bincount(o_m, minlength=3)} envpool {np.bincount(o_e, minlength=3)} "
          f"mean length {l_m.mean():.2f} vs {l_e.mean():.2f}; p {pvalues}")  # fmt: skip
    assert all(p > ALPHA / 2 for p in pvalues.values()), pvalues


# -- (c) checkpoints ---------------------------------------------------------------------------------------------
def _welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t test on two backends' rewards; 1.0 when every episode of both got the same reward (no spread)."""
    if len(np.unique(np.concatenate([a, b]))) == 1:
        return 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _table1_pvalues(label: str, model, n: int, seed: int) -> dict:
    """``n`` episodes per Table-1 RTG on each backend (same seeds): Fisher's exact test per outcome and Welch's t
    test on the mean reward (12 p-values)."""
    per = {
        b: evaluate_rtgs(model, TABLE1_RTGS, n_episodes=n, seed=seed, workers=2, progress=False, env_backend=b)
        for b in ("minigrid", "envpool")
    }
    pvalues = {}
    for m, e in zip(per["minigrid"], per["envpool"], strict=True):
        for o in ("goal", "collision", "timeout"):
            a, b = int((m.outcomes == o).sum()), int((e.outcomes == o).sum())
            pvalues[(m.rtg, o)] = float(stats.fisher_exact([[a, m.n - a], [b, e.n - b]]).pvalue)
        pvalues[(m.rtg, "mean_reward")] = _welch_p(m.rewards, e.rewards)
        print(f"\n{label} rtg {m.rtg}: minigrid {m.summary()}\n  envpool {e.summary()}")
    print(f"{label} p-values: {pvalues}")
    return pvalues


#: full size only (-m envpool_full): the lockstep tests above prove the backends step identically, step by step, on
#: random and on raw-index's own actions (>= 100k steps; the env never sees which policy chose an action), and the
#: DTI reference's Table 1 below keeps the statistical test in the default command; these two repeats of it took
#: ~90 s of that command (Intel Xeon)
@pytest.mark.envpool_full
@pytest.mark.parametrize("name", ["raw-index", "one-hot"])
def test_table1_of_our_checkpoints_matches_minigrid(name):
    """Table 1 (RTGs −1, 0, 0.9) of our checkpoints, 200 episodes per RTG on each backend, Fisher's exact test
    per outcome and Welch's t test on the mean reward, Bonferroni over the 12 tests at α 0.01. Power: a goal rate
    of 0.976 (raw-index at 0.9) falling to 0.90 is found with probability ≈ 0.6, to 0.85 with ≈ 0.95."""
    pvalues = _table1_pvalues(name, load_checkpoint(CHECKPOINTS_DIR / name), 200, 0)
    assert min(pvalues.values()) > ALPHA / len(pvalues), pvalues


@pytest.mark.reference
def test_table1_of_the_dti_reference_matches_minigrid(reference_model):
    """The DTI reference (max_steps 1000): as for ours, 200 episodes per RTG on each backend."""
    pvalues = _table1_pvalues("reference", reference_model, 200, 3)
    assert min(pvalues.values()) > ALPHA / len(pvalues), pvalues


@pytest.mark.envpool_full
@pytest.mark.parametrize("name", ["raw-index", "one-hot"])
def test_calibration_means_match_minigrid(name):
    """All 21 RTGs of the calibration, 200 episodes each on each backend: Welch's t test on the mean reward,
    Bonferroni over 21 RTGs at α 0.01."""
    from dt_circuits.evaluation.rtgs import DEFAULT_RTGS

    model = load_checkpoint(CHECKPOINTS_DIR / name)
    per = {
        b: evaluate_rtgs(model, list(DEFAULT_RTGS), n_episodes=200, seed=0, workers=2, progress=False, env_backend=b)
        for b in ("minigrid", "envpool")
    }
    pvalues = {}
    for m, e in zip(per["minigrid"], per["envpool"], strict=True):
        pvalues[m.rtg] = _welch_p(m.rewards, e.rewards)
    print(f"\n{name} calibration means p-values: {pvalues}")
    assert min(pvalues.values()) > ALPHA / len(pvalues), pvalues


# -- the backend's own contract ---------------------------------------------------------------------------------
def test_envpool_results_do_not_depend_on_batching_chunking_or_workers():
    """Same (seed, episode) → same episode whatever the batch size, the slice or the worker count."""
    model = random_model(2, scale=1.0)
    spec = EnvSpec(max_steps=40)
    whole = rollout(model, rtg=0.5, n_episodes=60, seed=5, env=spec, env_backend="envpool", record_states=True)
    small = rollout(model, rtg=0.5, n_episodes=60, seed=5, env=spec, env_backend="envpool", n_envs=7)
    part = rollout(model, rtg=0.5, n_episodes=60, seed=5, env=spec, env_backend="envpool", episodes=range(30, 60))
    pooled = [
        evaluate_rtgs(model, [0.5], n_episodes=60, seed=5, env=spec, workers=w, progress=False, env_backend="envpool")[
            0
        ]
        for w in (1, 2)
    ]
    for other in (small, *pooled):
        assert np.array_equal(whole.rewards, other.rewards) and np.array_equal(whole.lengths, other.lengths)
    assert np.array_equal(whole.lengths[30:], part.lengths)
    other_seed = rollout(model, rtg=0.5, n_episodes=60, seed=6, env=spec, env_backend="envpool")
    assert not np.array_equal(whole.lengths, other_seed.lengths)
    obs, rtg, t = whole.extra["states"]
    poses, eps = whole.extra["poses"], whole.extra["episodes"]
    assert len(obs) == len(poses) == len(eps) == whole.lengths.sum()
    assert (poses[t == 0] == (1, 1, 0)).all()  # Dynamic Obstacles' fixed start: (1, 1) facing right


def test_envpool_seed_is_the_low_31_bits():
    assert envpool_seed(0xFFFFFFFF) == 0x7FFFFFFF and envpool_seed(0x80000005) == 5 and envpool_seed(12) == 12


def test_missing_envpool_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)
    model = random_model(0, scale=1.0)
    with pytest.raises(ConfigError, match=r"not importable .*: pip install envpool, or pass --env-backend minigrid"):
        rollout(model, rtg=0.5, n_episodes=1, env=EnvSpec(max_steps=10), env_backend="envpool")
    with pytest.raises(ConfigError, match="--env-backend must be one of envpool, minigrid"):
        rollout(model, rtg=0.5, n_episodes=1, env=EnvSpec(max_steps=10), env_backend="gym")


def test_offsets_cover_the_3x3_block():
    assert len(OFFSETS) == 9 and OFFSETS[STAY] == (0, 0)


def test_recorded_states_do_not_depend_on_the_task_size(monkeypatch):
    """EnvPool rollouts run in tasks of ENVPOOL_CHUNK episodes (bigger model batches); every episode's outcome and
    every recorded state, in canonical order, are those of tasks of RECORD_GROUP episodes, on which the recorded
    claim numbers were measured."""
    from dt_circuits.evaluation import pool

    assert pool.ENVPOOL_CHUNK > pool.RECORD_GROUP == pool.CHUNK
    model = random_model(3, scale=1.0)
    spec = EnvSpec(max_steps=30)
    n = pool.ENVPOOL_CHUNK + 2 * pool.CHUNK + 7  # several tasks of each size, a ragged last one
    big = evaluate_rtgs(model, [0.5], n_episodes=n, seed=4, env=spec, workers=2, progress=False,
                        record_states=True)[0]  # fmt: skip
    monkeypatch.setattr(pool, "ENVPOOL_CHUNK", pool.RECORD_GROUP)
    small = evaluate_rtgs(model, [0.5], n_episodes=n, seed=4, env=spec, workers=2, progress=False,
                          record_states=True)[0]  # fmt: skip
    assert np.array_equal(big.rewards, small.rewards) and np.array_equal(big.lengths, small.lengths)
    for a, b in zip(big.extra["states"], small.extra["states"], strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(big.extra["poses"], small.extra["poses"])
    assert np.array_equal(big.extra["episodes"], small.extra["episodes"])
    # the canonical order is the one a task of RECORD_GROUP episodes records by itself, on either backend
    for backend in ("envpool", "minigrid"):
        group = range(pool.RECORD_GROUP, 2 * pool.RECORD_GROUP)
        one = rollout(model, rtg=0.5, n_episodes=len(group), seed=4, env=spec, episodes=group, n_envs=len(group),
                      record_states=True, env_backend=backend)  # fmt: skip
        order = pool.canonical_order(one.extra["episodes"], one.extra["states"][2])
        assert np.array_equal(order, np.arange(len(order))), backend
