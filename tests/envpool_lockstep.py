"""Lock-step driving of Farama Minigrid by EnvPool: the harness behind ``tests/test_envpool_equivalence.py``.

The two envs draw obstacle moves from different generators, so to compare them step by step each Minigrid env is
put in its EnvPool twin's start state and, at every step, Minigrid's own ``DynamicObstaclesEnv.step`` runs with
one change: the obstacle placement it would sample (``place_obj``) is replaced by EnvPool's, after checking it is
a move Minigrid's sampler could make (a free cell of the 3×3 block around the obstacle, not the agent's cell; or
staying put, which Minigrid does when 101 tries fail). Everything else (the agent's move, collisions, rewards,
the time limit, the observation) is Minigrid's code. Each move is logged with the state it was drawn in, for the
distribution tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from minigrid.core.world_object import Ball

from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.envpool_rollout import make_pool

#: 3×3 offsets in a fixed order: (dx, dy) for dy in -1..1, dx in -1..1; index 4 is (0, 0), staying put.
OFFSETS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
STAY = OFFSETS.index((0, 0))
MINIGRID_TRIES = 101  # place_obj raises after num_tries > max_tries (100), so 101 draws


def stay_probability(n_free: int) -> float:
    """P(an obstacle stays put) under Minigrid's sampler with ``n_free`` free cells among the 9."""
    return (1 - n_free / 9) ** MINIGRID_TRIES


@dataclass
class Moves:
    """Every obstacle move: the free offsets it could take (bit mask over OFFSETS) and the offset taken."""

    free: list[int] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    illegal: list[str] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        mask = np.array(self.free, np.int64)
        free = (mask[:, None] >> np.arange(9)) & 1
        return free.astype(bool), np.array(self.taken, np.int64)


@dataclass
class Mismatches:
    """Differences between the two envs, by kind; ``last_step_flags`` is the one known, expected difference."""

    steps: int = 0
    episodes: int = 0
    obs: int = 0
    reward: int = 0
    pose: int = 0
    flags: int = 0
    last_step_flags: int = 0
    reset_obs: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, msg: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {msg}")

    @property
    def total(self) -> int:
        return self.obs + self.reward + self.pose + self.flags + self.reset_obs


def sync(mg, debug) -> None:
    """Put Minigrid env ``mg`` in the state of an EnvPool env just after its reset (agent, obstacles, step 0)."""
    for ob in mg.obstacles:
        mg.grid.set(*ob.cur_pos, None)
    xy = list(debug.obstacle_positions)
    mg.obstacles = []
    for x, y in zip(xy[0::2], xy[1::2], strict=True):
        ball = Ball()
        mg.grid.set(x, y, ball)
        ball.init_pos = ball.cur_pos = (x, y)
        mg.obstacles.append(ball)
    mg.agent_pos, mg.agent_dir, mg.step_count = tuple(debug.agent_pos), int(debug.agent_dir), 0


def _scripted_place(mg, targets: list[tuple[int, int]], moves: Moves):
    """A ``place_obj`` that puts obstacle i on ``targets[i]`` if Minigrid's sampler could, logging the move."""

    def place_obj(obj, top=None, size=None, reject_fn=None, max_tries=math.inf):
        i = next(k for k, o in enumerate(mg.obstacles) if o is obj)
        old, target = tuple(obj.cur_pos), tuple(targets[i])
        mask = 0
        for k, (dx, dy) in enumerate(OFFSETS):
            cell = (old[0] + dx, old[1] + dy)
            if mg.grid.get(*cell) is None and cell != tuple(mg.agent_pos):
                mask |= 1 << k
        offset = (target[0] - old[0], target[1] - old[1])
        moves.free.append(mask)
        moves.taken.append(OFFSETS.index(offset) if offset in OFFSETS else -1)
        if target == old:
            raise RecursionError("stays put")  # Minigrid's step catches this and leaves the obstacle
        if offset not in OFFSETS or not mask >> OFFSETS.index(offset) & 1:
            moves.illegal.append(f"obstacle {i} {old} -> {target}, free offsets mask {mask:09b}")
        mg.grid.set(*target, obj)
        obj.init_pos = obj.cur_pos = target
        return target

    return place_obj


def lockstep(
    spec: EnvSpec,
    n_steps: int,
    *,
    n_envs: int = 32,
    seed: int = 0,
    policy=None,
) -> tuple[Mismatches, Moves]:
    """Step ``n_envs`` EnvPool envs and their Minigrid twins together for ``n_steps`` env steps in total.

    ``policy(obs, t, rtg_drop) -> actions`` chooses the actions from EnvPool's observations (uniform random when
    None); episodes restart through EnvPool's auto-reset, and Minigrid is re-synced from each new start.
    """
    rng = np.random.default_rng(seed)
    pool = make_pool(spec, [seed * 1000 + i for i in range(n_envs)])
    obs, info = pool.reset()
    twins = [spec.make() for _ in range(n_envs)]
    mism, moves = Mismatches(), Moves()
    for i, (mg, debug) in enumerate(zip(twins, pool.debug_states(), strict=True)):
        mg.reset(seed=i)
        sync(mg, debug)
    t = np.zeros(n_envs, np.int64)
    gained = np.zeros(n_envs, np.float64)
    done = np.zeros(n_envs, bool)
    image = obs["image"]
    for k, mg in enumerate(twins):
        if not np.array_equal(mg.gen_obs()["image"], image[k]):
            mism.note("reset_obs", f"env {k} start")
    while mism.steps < n_steps:
        actions = rng.integers(0, 3, n_envs) if policy is None else policy(image, t, gained, rng)
        obs, reward, terminated, truncated, info = pool.step(np.asarray(actions))
        image = obs["image"]
        debugs = pool.debug_states()
        for k, (mg, debug) in enumerate(zip(twins, debugs, strict=True)):
            if done[k]:  # EnvPool auto-reset this env and ignored the action: start the twin there too
                sync(mg, debug)
                if not np.array_equal(mg.gen_obs()["image"], image[k]):
                    mism.note("reset_obs", f"env {k} restart")
                done[k], t[k], gained[k] = False, 0, 0.0
                continue
            xy = list(debug.obstacle_positions)
            mg.place_obj = _scripted_place(mg, list(zip(xy[0::2], xy[1::2], strict=True)), moves)
            try:
                o, r, te, tr, _ = mg.step(int(actions[k]))
            finally:
                del mg.place_obj
            mism.steps += 1
            t[k] += 1
            where = f"env {k} step {t[k]}"
            if not np.array_equal(o["image"], image[k]):
                mism.note("obs", where)
            if abs(r - float(reward[k])) > 1e-6:
                mism.note("reward", f"{where}: {r} vs {reward[k]}")
            if (tuple(mg.agent_pos), mg.agent_dir) != (tuple(info["agent_pos"][k]), int(obs["direction"][k])):
                mism.note("pose", where)
            if (bool(te), bool(tr)) != (bool(terminated[k]), bool(truncated[k])):
                # the one known difference: an episode that ends on its last allowed step
                known = (te, tr, bool(terminated[k]), bool(truncated[k])) == (True, True, False, True)
                if known and t[k] == spec.max_steps:
                    mism.last_step_flags += 1
                else:
                    mism.note("flags", f"{where}: minigrid {(te, tr)} envpool {(terminated[k], truncated[k])}")
            gained[k] += float(reward[k])
            if te or tr or terminated[k] or truncated[k]:
                done[k] = True
                mism.episodes += 1
    return mism, moves


def checkpoint_policy(model):
    """Sampled actions of ``model`` with the DTI protocol; each env's RTG is one of Table 1's (cycled)."""
    import torch

    from dt_circuits.evaluation.episodes import choose_actions
    from dt_circuits.evaluation.rtgs import TABLE1_RTGS

    targets = np.resize(np.array(TABLE1_RTGS, np.float32), 256)

    def policy(image, t, gained, rng):
        n = len(image)
        with torch.no_grad():
            logits = model(image, (targets[:n] - gained).astype(np.float32), t)
        return choose_actions(logits, [rng] * n, sample=True)

    return policy


def lockstep_job(job: dict) -> tuple[Mismatches, Moves]:
    """One lock-step run in a worker process: ``job`` names the env's max_steps, the steps, envs and seed, and a
    checkpoint directory whose sampled actions drive it (None: uniform random actions)."""
    import torch

    torch.set_num_threads(1)
    policy = None
    if job.get("checkpoint"):
        from dt_circuits.dt.checkpoint import load_checkpoint

        policy = checkpoint_policy(load_checkpoint(job["checkpoint"]).eval())
    spec = EnvSpec(max_steps=job["max_steps"])
    return lockstep(spec, job["steps"], n_envs=job["n_envs"], seed=job["seed"], policy=policy)


def lockstep_parallel(jobs: list[dict], workers: int = 2) -> list[tuple[Mismatches, Moves]]:
    """Run lock-step ``jobs`` side by side in ``workers`` spawned processes (the cost is Minigrid's pure-Python
    step, one core each); results in job order."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(lockstep_job, jobs))
