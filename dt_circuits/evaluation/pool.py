"""The rollout pool: many episodes at many RTGs over worker processes, with worker-count independent numbers.

Work is cut into fixed chunks of episodes (``rollout(..., episodes=range(a, b))``) whose boundaries do not
depend on the number of workers, and every chunk runs with one torch thread, so the numbers are identical for
``workers=1`` and ``workers=K``. Calibration, training's evaluations and the claims' rollout checks all use it.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dt_circuits.core.cores import cores
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.rollout import DEFAULT_ENV_BACKEND, RolloutResult, check_env_backend, rollout

CHUNK = 50
#: episodes per task (and per model batch) when EnvPool steps them: EnvPool's steps cost ~1/16 of Minigrid's, so
#: the model's forward dominates and bigger batches pay (8,000 recorded episodes: 9.3 s at 50, 3.8 s at 250). An
#: episode's outcome does not depend on the task size (its own seed and action stream), and recorded states are
#: put in one canonical order whatever the task size (:func:`canonical_order`).
ENVPOOL_CHUNK = 250
#: recorded states come in groups of this many consecutive episodes, step by step within a group, in episode
#: order within a step: the order 50-episode tasks produce by themselves, so every number built from recorded
#: states before tasks grew (on-policy families, visited timesteps) stays as recorded
RECORD_GROUP = 50

_WORKER: dict[str, Any] = {}


def model_payload(model: DecisionTransformer, env: EnvSpec) -> dict[str, Any]:
    """What another process needs to rebuild the model (:func:`model_from_payload`): config, weights as numpy
    arrays, env; plain data, cheap to pickle."""
    return {
        "cfg": model.cfg.to_dict(),
        "weights": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
        "env": env.to_dict(),
    }


def model_from_payload(payload: dict[str, Any]) -> tuple[DecisionTransformer, EnvSpec]:
    """The model (in eval mode) and env of a :func:`model_payload`."""
    model = DecisionTransformer(DTConfig.from_dict(payload["cfg"]))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in payload["weights"].items()})
    model.eval()
    return model, EnvSpec.from_dict(payload["env"])


def _init_worker(payload: dict[str, Any]) -> None:
    _one_thread()
    _WORKER["model"], _WORKER["env"] = model_from_payload(payload)


def _run_chunk(task: tuple) -> tuple:
    k, rtg, seed, start, stop, sample, record, env_backend = task
    res = rollout(
        _WORKER["model"],
        rtg=rtg,
        n_episodes=stop - start,
        seed=seed,
        sample=sample,
        env=_WORKER["env"],
        episodes=range(start, stop),
        n_envs=stop - start,
        record_states=bool(record),
        env_backend=env_backend,
    )
    return k, start, res.rewards, res.lengths, res.outcomes, res.extra


def start_method() -> str:
    """``fork`` on Linux: a spawned worker re-imports torch and TransformerLens (~5-7 s each), which cost more
    than a whole claims suite's rollouts gain from a second core. Forked workers inherit the imports and set
    one torch thread before any work, the same guard PyTorch's DataLoader workers use. Elsewhere: ``spawn``."""
    return "fork" if sys.platform == "linux" and "fork" in mp.get_all_start_methods() else "spawn"


#: what a :func:`fork_map`'s workers read (the function and what it shares), set just before its pool forks
_FORK_MAP: list = []


def _one_thread() -> None:
    torch.set_num_threads(1)


def _fork_map_call(task: Any) -> Any:
    fn, shared = _FORK_MAP
    return fn(shared, task)


def fork_map(fn: Any, tasks: Sequence[Any], shared: Any, workers: int | None = None) -> list[Any]:
    """``[fn(shared, task) for task in tasks]`` over ``workers`` forked processes (default: every core), results in
    task order, each task handed to whichever worker is free. ``shared`` (a subject with its caches, arrays) is
    inherited by the fork, never pickled; only tasks and results are. Each worker uses one torch thread (the
    cores are shared out by processes). One process, in order, where the platform does not fork
    (:func:`start_method`) or one worker is enough. For work whose results do not depend on where it runs."""
    workers = min(workers or cores(), len(tasks))
    if workers <= 1 or start_method() != "fork":
        return [fn(shared, task) for task in tasks]
    _FORK_MAP[:] = [fn, shared]
    try:
        with mp.get_context("fork").Pool(workers, initializer=_one_thread) as pool:
            return pool.map(_fork_map_call, tasks, chunksize=1)
    finally:
        _FORK_MAP.clear()


def model_env(model: DecisionTransformer) -> EnvSpec:
    """The env a model is rolled out in by default: its checkpoint's, else Dynamic Obstacles' default spec."""
    return getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()


def evaluate_rtgs(
    model: DecisionTransformer,
    rtgs: Sequence[float],
    *,
    n_episodes: int = 500,
    seed: int = 0,
    env: EnvSpec | None = None,
    workers: int | None = None,
    sample: bool = True,
    progress: bool = True,
    record_states: bool = False,
    env_backend: str = DEFAULT_ENV_BACKEND,
) -> list[RolloutResult]:
    """Roll out ``n_episodes`` per RTG; ``workers`` processes (default: all cores), same numbers for any count.

    ``record_states`` keeps every queried state (``extra["states"]``, ``["poses"]``, ``["episodes"]``) in
    :func:`canonical_order`, whatever the worker count, the backend's task size or the model's batch.
    ``env_backend`` ("minigrid" or "envpool") steps the envs (:data:`~dt_circuits.evaluation.rollout.ENV_BACKENDS`)."""
    from dt_circuits.core.progress import progress as progress_reporter

    if n_episodes < 1:
        raise ConfigError(f"episodes per RTG must be >= 1, got {n_episodes}")
    if not rtgs:
        raise ConfigError("no RTGs to evaluate")
    if check_env_backend(env_backend) == "envpool":
        from dt_circuits.evaluation.envpool_rollout import import_envpool

        import_envpool()  # one line in this process, not a traceback per worker
    env = env or model_env(model)
    if env.max_steps > model.cfg.max_timestep + 1:
        raise ConfigError(
            f"env max_steps {env.max_steps} needs timesteps beyond the model's time embedding "
            f"(max_timestep {model.cfg.max_timestep})"
        )
    workers = cores() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    chunk = ENVPOOL_CHUNK if env_backend == "envpool" else CHUNK
    tasks = [
        (k, float(rtg), seed, a, min(a + chunk, n_episodes), sample, record_states, env_backend)
        for k, rtg in enumerate(rtgs)
        for a in range(0, n_episodes, chunk)
    ]
    rewards = np.zeros((len(rtgs), n_episodes))
    lengths = np.zeros((len(rtgs), n_episodes), np.int64)
    outcomes = np.empty((len(rtgs), n_episodes), dtype=object)
    bar = progress_reporter(len(rtgs) * n_episodes, "rollouts", "ep", enabled=progress)

    extras: dict[tuple[int, int], dict] = {}

    def store(out: tuple) -> None:
        k, start, r, n, o, extra = out
        extras[(k, start)] = extra
        rewards[k, start : start + len(r)], lengths[k, start : start + len(r)] = r, n
        outcomes[k, start : start + len(r)] = o
        bar.update(len(r))

    payload = model_payload(model, env)
    if workers == 1 or len(tasks) == 1:
        threads = torch.get_num_threads()
        saved = dict(_WORKER)
        try:
            _init_worker(payload)
            for task in tasks:
                store(_run_chunk(task))
        finally:
            torch.set_num_threads(threads)
            _WORKER.clear()
            _WORKER.update(saved)
    else:
        ctx = mp.get_context(start_method())
        with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(payload,)) as pool:
            for out in pool.imap_unordered(_run_chunk, tasks):
                store(out)
    bar.close()
    return [
        RolloutResult(
            rtg=float(rtg),
            rewards=rewards[k],
            lengths=lengths[k],
            outcomes=outcomes[k].astype(str),
            sample=sample,
            seed=seed,
            env_backend=env_backend,
            extra=_merge_extras([extras[key] for key in sorted(extras) if key[0] == k]) if record_states else {},
        )
        for k, rtg in enumerate(rtgs)
    ]


def _merge_extras(parts: list[dict]) -> dict:
    """Recorded states of consecutive episode chunks, concatenated in episode order, then canonically ordered."""
    merged = {
        "states": tuple(np.concatenate(arrays) for arrays in zip(*(p["states"] for p in parts), strict=True)),
        "poses": np.concatenate([p["poses"] for p in parts]),
        "episodes": np.concatenate([p["episodes"] for p in parts]),
    }
    order = canonical_order(merged["episodes"], merged["states"][2])
    return {
        "states": tuple(a[order] for a in merged["states"]),
        "poses": merged["poses"][order],
        "episodes": merged["episodes"][order],
    }


def canonical_order(episodes: np.ndarray, timesteps: np.ndarray) -> np.ndarray:
    """Indices sorting recorded states by (episode group of :data:`RECORD_GROUP`, timestep, episode): the order
    does not depend on how many episodes a task or a model batch held."""
    return np.lexsort((episodes, timesteps, episodes // RECORD_GROUP))
