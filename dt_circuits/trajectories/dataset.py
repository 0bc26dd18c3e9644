"""Offline trajectories for Decision Transformer training: one storage format, recorders, and the DTI reader.

Every data source (scripted policies, PPO training runs, DTI's own files) ends up as a
:class:`TrajectoryDataset`: the observation each action was taken from, the action, and one final reward per
episode. Dynamic Obstacles pays a single terminal reward, so the return-to-go at every step of an episode is
that episode's final reward -- the label DTI trains on.

Files are a zip of ``.npy`` arrays (read with ``np.load(allow_pickle=False)``) plus a JSON metadata entry,
written with fixed timestamps so the same data always gives the same bytes and sha256. Nothing is pickled;
DTI's pickle files are read only behind an explicit ``allow_pickle=True``, because unpickling runs code.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dt_circuits.core.errors import DTCircuitsError, InvalidInputError
from dt_circuits.core.io import sha256_file, write_bytes_atomic
from dt_circuits.env.spec import EnvSpec, check_index_obs
from dt_circuits.trajectories.mix import MixEntry

FORMAT = "dt-circuits-trajectories"
FORMAT_VERSION = 1
OUTCOMES = ("goal", "collision", "timeout")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ARRAYS = ("obs", "actions", "lengths", "rewards", "sources", "env_seeds")


#: what a trajectory file may decompress to: ~12x the committed file's 80 MB of arrays, far below any RAM here
MAX_UNCOMPRESSED_BYTES = 1 << 30


class TrajectoryFileError(DTCircuitsError):
    """A trajectory file is missing, corrupt, of another format, or would need unpickling to read."""


@dataclass
class Episode:
    """One finished episode: ``obs[t]`` is what the agent saw when it chose ``actions[t]``."""

    obs: np.ndarray  # (T, 7, 7, 3) uint8
    actions: np.ndarray  # (T,) uint8
    reward: float  # the terminal reward (the episode's return)
    source: str
    env_seed: int = -1  # -1: not reset from an explicit seed (PPO's auto-resets)


def outcome_of(reward: float | np.ndarray) -> np.ndarray:
    """goal / collision / timeout from the final reward (timeouts and truncations pay exactly 0)."""
    r = np.asarray(reward)
    return np.where(r > 0, "goal", np.where(r < 0, "collision", "timeout"))


@dataclass
class TrajectoryDataset:
    """Episodes stored flat: step arrays of length N (all episodes concatenated), episode arrays of length E."""

    obs: np.ndarray  # (N, 7, 7, 3) uint8
    actions: np.ndarray  # (N,) uint8
    lengths: np.ndarray  # (E,) int32
    rewards: np.ndarray  # (E,) float32 final reward
    sources: np.ndarray  # (E,) uint8 index into source_names
    source_names: tuple[str, ...]
    env: EnvSpec
    env_seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (E,) int64, -1 unknown
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.obs = np.ascontiguousarray(self.obs, dtype=np.uint8)
        self.actions = np.asarray(self.actions, dtype=np.uint8)
        self.lengths = np.asarray(self.lengths, dtype=np.int32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32)
        self.sources = np.asarray(self.sources, dtype=np.uint8)
        self.source_names = tuple(self.source_names)
        if self.env_seeds.size == 0 and self.lengths.size:
            self.env_seeds = np.full(len(self.lengths), -1, np.int64)
        self.env_seeds = np.asarray(self.env_seeds, dtype=np.int64)
        self.validate()

    # -- invariants ---------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise InvalidInputError unless the arrays describe whole episodes of valid observations."""
        n, e = len(self.actions), len(self.lengths)
        if self.obs.shape != (n, 7, 7, 3):
            raise InvalidInputError(f"obs must have shape ({n}, 7, 7, 3) to match actions, got {self.obs.shape}")
        check_index_obs(self.obs, what="trajectory obs")
        if n and int(self.actions.max()) > 2:
            raise InvalidInputError("actions must be 0 (left), 1 (right) or 2 (forward)")
        for name in ("rewards", "sources", "env_seeds"):
            if len(getattr(self, name)) != e:
                raise InvalidInputError(f"{name} has {len(getattr(self, name))} entries for {e} episodes")
        if e and int(self.lengths.min()) < 1:
            raise InvalidInputError("every episode must have at least one step")
        if int(self.lengths.sum()) != n:
            raise InvalidInputError(f"episode lengths add up to {int(self.lengths.sum())}, but there are {n} steps")
        if e and int(self.lengths.max()) > self.env.max_steps:
            raise InvalidInputError(
                f"an episode has {int(self.lengths.max())} steps, more than the env's max_steps {self.env.max_steps}"
            )
        if e and int(self.sources.max()) >= len(self.source_names):
            raise InvalidInputError("sources index past source_names")
        if not np.all(np.isfinite(self.rewards)) or (e and float(np.abs(self.rewards).max()) > 1):
            raise InvalidInputError("rewards must be finite and within [-1, 1]")

    # -- views ----------------------------------------------------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return len(self.lengths)

    @property
    def n_steps(self) -> int:
        return len(self.actions)

    @property
    def starts(self) -> np.ndarray:
        """Index of each episode's first step in the flat arrays."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    @property
    def episode_index(self) -> np.ndarray:
        """(N,) episode number of every step."""
        return np.repeat(np.arange(self.n_episodes), self.lengths)

    @property
    def timesteps(self) -> np.ndarray:
        """(N,) step index within its episode (the DT's time input)."""
        return (np.arange(self.n_steps) - np.repeat(self.starts, self.lengths)).astype(np.int64)

    @property
    def rtg(self) -> np.ndarray:
        """(N,) return-to-go label: with one terminal reward it is the episode's final reward at every step."""
        return np.repeat(self.rewards, self.lengths).astype(np.float32)

    @property
    def outcomes(self) -> np.ndarray:
        return outcome_of(self.rewards)

    def episode(self, i: int) -> Episode:
        s, n = int(self.starts[i]), int(self.lengths[i])
        return Episode(
            self.obs[s : s + n],
            self.actions[s : s + n],
            float(self.rewards[i]),
            self.source_names[self.sources[i]],
            int(self.env_seeds[i]),
        )

    def summary(self) -> dict[str, Any]:
        """Counts and shapes that say whether the data covers the post's Fig. 4 mix."""
        out: dict[str, Any] = {
            "episodes": self.n_episodes,
            "steps": self.n_steps,
            "max_steps": self.env.max_steps,
            "outcomes": {o: int(np.sum(self.outcomes == o)) for o in OUTCOMES},
            "steps_by_outcome": {o: int(self.lengths[self.outcomes == o].sum()) for o in OUTCOMES},
        }
        goal = self.rewards[self.rewards > 0]
        if goal.size:
            out["goal_reward_quantiles"] = {
                q: round(float(np.quantile(goal, float(q))), 4) for q in ("0.0", "0.1", "0.5", "0.9", "1.0")
            }
        out["by_source"] = {
            name: {
                "episodes": int(np.sum(self.sources == k)),
                "steps": int(self.lengths[self.sources == k].sum()),
                **{o: int(np.sum((self.sources == k) & (self.outcomes == o))) for o in OUTCOMES},
            }
            for k, name in enumerate(self.source_names)
        }
        out["action_counts"] = np.bincount(self.actions, minlength=3).tolist()
        return out

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_episodes(
        cls, episodes: Sequence[Episode], env: EnvSpec, meta: dict[str, Any] | None = None
    ) -> TrajectoryDataset:
        """Pack recorded episodes; source names are kept in first-seen order."""
        names: list[str] = []
        for ep in episodes:
            if ep.source not in names:
                names.append(ep.source)
        if episodes:
            obs = np.concatenate([ep.obs for ep in episodes])
            actions = np.concatenate([ep.actions for ep in episodes])
        else:
            obs, actions = np.zeros((0, 7, 7, 3), np.uint8), np.zeros(0, np.uint8)
        return cls(
            obs=obs,
            actions=actions,
            lengths=np.array([len(ep.actions) for ep in episodes], np.int32),
            rewards=np.array([ep.reward for ep in episodes], np.float32),
            sources=np.array([names.index(ep.source) for ep in episodes], np.uint8),
            source_names=tuple(names),
            env=env,
            env_seeds=np.array([ep.env_seed for ep in episodes], np.int64),
            meta=dict(meta or {}),
        )

    @classmethod
    def concat(cls, parts: Sequence[TrajectoryDataset], meta: dict[str, Any] | None = None) -> TrajectoryDataset:
        """Join datasets recorded in the same env (sources are merged by name)."""
        if not parts:
            raise InvalidInputError("nothing to concatenate")
        env = parts[0].env
        if any(p.env != env for p in parts):
            raise InvalidInputError("cannot concatenate trajectories recorded with different env specs")
        names: list[str] = []
        for p in parts:
            names += [n for n in p.source_names if n not in names]
        return cls(
            obs=np.concatenate([p.obs for p in parts]),
            actions=np.concatenate([p.actions for p in parts]),
            lengths=np.concatenate([p.lengths for p in parts]),
            rewards=np.concatenate([p.rewards for p in parts]),
            sources=np.concatenate(
                [np.array([names.index(p.source_names[s]) for s in p.sources], np.uint8) for p in parts]
            ),
            source_names=tuple(names),
            env=env,
            env_seeds=np.concatenate([p.env_seeds for p in parts]),
            meta=dict(meta or {}),
        )

    # -- storage --------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A zip of .npy arrays plus meta.json; fixed timestamps, so equal data gives equal bytes."""
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "env": self.env.to_dict(),
            "source_names": list(self.source_names),
            "meta": self.meta,
        }
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            info = zipfile.ZipInfo("meta.json", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, json.dumps(header, indent=2, sort_keys=True))
            for name in _ARRAYS:
                arr = io.BytesIO()
                np.lib.format.write_array(arr, np.ascontiguousarray(getattr(self, name)), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_LZMA
                zf.writestr(info, arr.getvalue())
        return buf.getvalue()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (a crash never leaves half a data file)."""
        return write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrajectoryDataset:
        """Read a file written by :meth:`save`; never unpickles."""
        path = Path(path)
        if not path.exists():
            raise TrajectoryFileError(f"trajectory file not found: {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                if "meta.json" not in zf.namelist():
                    raise TrajectoryFileError(f"{path} is not a {FORMAT} file (no meta.json)")
                total = sum(info.file_size for info in zf.infolist())
                if total > MAX_UNCOMPRESSED_BYTES:
                    raise TrajectoryFileError(
                        f"{path} would decompress to {total:,} bytes (limit {MAX_UNCOMPRESSED_BYTES:,}); "
                        "refusing a possible zip bomb"
                    )
                header = json.loads(zf.read("meta.json"))
                if not isinstance(header, dict):
                    raise TrajectoryFileError(f"{path}: meta.json is not a JSON object")
                arrays = {}
                for name in _ARRAYS:
                    with zf.open(f"{name}.npy") as f:
                        arrays[name] = np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
        except (
            zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, RecursionError, NotImplementedError,
            RuntimeError, lzma.LZMAError, zlib.error,
        ) as exc:  # fmt: skip
            # every way a damaged zip, stream or .npy header can fail; UnicodeDecodeError is a ValueError
            raise TrajectoryFileError(f"bad trajectory file {path}: {exc}") from None
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise TrajectoryFileError(
                f"{path} is not a {FORMAT} v{FORMAT_VERSION} file "
                f"(format {header.get('format')!r} v{header.get('format_version')!r})"
            )
        try:
            return cls(
                **arrays,
                source_names=tuple(header["source_names"]),
                env=EnvSpec.from_dict(header["env"]),
                meta=header.get("meta") or {},
            )
        except (KeyError, TypeError, DTCircuitsError) as exc:
            raise TrajectoryFileError(f"bad trajectory file {path}: {exc}") from None


# -- recording ----------------------------------------------------------------------------------------------------


class EpisodeRecorder(gym.Wrapper):
    """Records every finished episode of the wrapped (dict-obs) Minigrid env into ``sink``.

    It sits under any observation wrappers, so a learner (e.g. SB3's PPO on flattened images) trains as usual
    while the raw 7x7x3 views, its actions and the terminal rewards are kept -- DTI's "store the trajectories
    generated during PPO training".
    """

    def __init__(self, env: gym.Env, sink: list[Episode], source: str | Callable[[], str]) -> None:
        super().__init__(env)
        self.sink = sink
        self.source = source
        self._obs: list[np.ndarray] = []
        self._actions: list[int] = []
        self._seed = -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs, self._actions = [obs["image"].copy()], []
        self._seed = -1 if seed is None else int(seed)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._actions.append(int(action))
        if terminated or truncated:
            source = self.source() if callable(self.source) else self.source
            self.sink.append(
                Episode(
                    np.stack(self._obs).astype(np.uint8),
                    np.array(self._actions, np.uint8),
                    float(reward),
                    source,
                    self._seed,
                )
            )
            self._obs, self._actions = [], []
        else:
            self._obs.append(obs["image"].copy())
        return obs, reward, terminated, truncated, info


# -- DTI files (pickles: opt-in only) --------------------------------------------------------------------------------


def load_dti_trajectories(
    path: str | os.PathLike[str], *, env: EnvSpec | None = None, allow_pickle: bool = False
) -> TrajectoryDataset:
    """Read a DTI ``TrajectoryWriter`` file (.pkl, .gz or .xz pickle) into our format.

    Unpickling runs code from the file, so this refuses unless ``allow_pickle=True``: only pass that for files
    you trust (e.g. ones you produced with DTI yourself). DTI stores arrays as (time, env, ...); episodes end at
    ``dones | truncated`` after flattening env-major, and a trailing unfinished piece is dropped.
    """
    path = Path(path)
    if not allow_pickle:
        raise TrajectoryFileError(
            f"refusing to read {path}: DTI trajectory files are pickles and unpickling runs code; "
            "pass allow_pickle=True (CLI: --allow-pickle) only for a file you trust"
        )
    if not path.exists():
        raise TrajectoryFileError(f"trajectory file not found: {path}")
    import gzip
    import lzma
    import pickle

    opener: Callable[..., Any] = {".xz": lzma.open, ".gz": gzip.open}.get(path.suffix, open)
    try:
        with opener(path, "rb") as f:
            raw = pickle.load(f)  # noqa: S301  (explicit opt-in above)
        data = raw["data"]
        obs = np.asarray(data["observations"])
        actions = np.asarray(data["actions"])
        rewards = np.asarray(data["rewards"], dtype=np.float64)
        ends = np.logical_or(np.asarray(data["dones"], bool), np.asarray(data["truncated"], bool))
    except (OSError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError, lzma.LZMAError) as exc:
        raise TrajectoryFileError(f"bad DTI trajectory file {path}: {exc}") from None
    if obs.ndim != 5 or obs.shape[-3:] != (7, 7, 3):
        raise TrajectoryFileError(f"DTI observations must be (time, env, 7, 7, 3) index images, got {obs.shape}")

    def env_major(a: np.ndarray) -> np.ndarray:
        return np.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:])

    obs, actions, rewards, ends = (env_major(a) for a in (obs, actions, rewards, ends))
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops[:-1]]).astype(np.int64)
    lengths = stops - starts
    keep = lengths > 0
    starts, stops, lengths = starts[keep], stops[keep], lengths[keep]
    total = np.array([rewards[a:b].sum() for a, b in zip(starts, stops, strict=True)], np.float32)
    sel = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)]) if len(starts) else []
    max_len = int(lengths.max()) if len(lengths) else 1
    spec = env or EnvSpec(max_steps=max(max_len, 1))
    return TrajectoryDataset(
        obs=np.rint(obs[sel]).astype(np.uint8),
        actions=actions[sel].astype(np.uint8),
        lengths=lengths.astype(np.int32),
        rewards=np.clip(total, -1, 1),
        sources=np.zeros(len(lengths), np.uint8),
        source_names=("dti",),
        env=spec,
        meta={
            "imported_from": str(path),
            "sha256": sha256_file(path),
            "dti_metadata_keys": sorted(raw.get("metadata", {})),
        },
    )


# -- scripted collection -------------------------------------------------------------------------------------------


def _make_policy(entry: MixEntry, env: EnvSpec):
    from dt_circuits.trajectories.policies import POLICIES, DelayedSeeker, EpsilonGreedy

    if entry.policy == "delayed":
        # delays from 15% of the episode on: delayed successes pay <~0.85, RTG ~0.9 stays the direct route
        base = DelayedSeeker(min_delay=int(0.15 * env.max_steps), max_delay=env.max_steps)
    else:
        base = POLICIES[entry.policy]()
    return EpsilonGreedy(base, entry.epsilon)


def scripted_episode(
    mix: Sequence[MixEntry], env: EnvSpec, seed: int, index: int, _cache: dict | None = None
) -> Episode:
    """Episode ``index`` of a scripted collection: a pure function of (mix, env, seed, index)."""
    ss = np.random.SeedSequence([seed, index])
    env_seed = int(ss.generate_state(1)[0])
    rng = np.random.default_rng(ss.spawn(1)[0])
    weights = np.array([m.weight for m in mix], dtype=np.float64)
    entry = mix[int(rng.choice(len(mix), p=weights / weights.sum()))]
    cache = _cache if _cache is not None else {}
    if "env" not in cache:
        cache["env"] = env.make()
    e = cache["env"]
    policy = _make_policy(entry, env)
    obs, _ = e.reset(seed=env_seed)
    policy.reset(rng)
    frames, actions = [], []
    while True:
        frames.append(obs["image"])
        action = policy.act(e, rng)
        actions.append(action)
        obs, reward, terminated, truncated, _ = e.step(action)
        if terminated or truncated:
            break
    source = f"{entry.policy}-eps{entry.epsilon:g}"
    return Episode(np.stack(frames).astype(np.uint8), np.array(actions, np.uint8), float(reward), source, env_seed)


def _collect_chunk(args: tuple[tuple[MixEntry, ...], dict, int, int, int]) -> list[Episode]:
    mix, env_dict, seed, start, stop = args
    env = EnvSpec.from_dict(env_dict)
    cache: dict = {}
    return [scripted_episode(mix, env, seed, i, cache) for i in range(start, stop)]


def collect_scripted(
    mix: Sequence[MixEntry],
    *,
    n_episodes: int,
    seed: int,
    env: EnvSpec,
    workers: int = 1,
    chunk: int = 50,
    progress: bool = True,
) -> TrajectoryDataset:
    """Collect ``n_episodes`` scripted episodes; identical for any ``workers`` (episodes are seeded one by one)."""
    from dt_circuits.core.progress import progress as progress_reporter

    mix = tuple(mix)
    tasks = [(mix, env.to_dict(), seed, a, min(a + chunk, n_episodes)) for a in range(0, n_episodes, chunk)]
    episodes: list[Episode] = []
    bar = progress_reporter(n_episodes, "collect", "ep", enabled=progress)
    if workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for part in pool.imap(_collect_chunk, tasks):
                episodes += part
                bar.update(len(part))
    else:
        for task in tasks:
            part = _collect_chunk(task)
            episodes += part
            bar.update(len(part))
    bar.close()
    meta = {
        "source": "scripted",
        "mix": [m.to_text() for m in mix],
        "seed": seed,
        "n_episodes": n_episodes,
    }
    return TrajectoryDataset.from_episodes(episodes, env, meta=meta)
