"""Trajectory storage, recorders, scripted policies and the opt-in DTI reader."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.env.spec import EnvSpec
from dt_circuits.trajectories.dataset import (
    Episode,
    EpisodeRecorder,
    TrajectoryDataset,
    TrajectoryFileError,
    collect_scripted,
    load_dti_trajectories,
    scripted_episode,
)
from dt_circuits.trajectories.mix import DEFAULT_MIX, MixEntry, parse_mix
from dt_circuits.trajectories.policies import Crasher, EpsilonGreedy, GoalSeeker, Survivor, front_type

SPEC = EnvSpec(max_steps=40)


@pytest.fixture(scope="module")
def small() -> TrajectoryDataset:
    return collect_scripted(DEFAULT_MIX, n_episodes=24, seed=3, env=SPEC, progress=False, chunk=7)


def _same(a: TrajectoryDataset, b: TrajectoryDataset) -> None:
    for name in ("obs", "actions", "lengths", "rewards", "sources", "env_seeds"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.source_names == b.source_names
    assert a.env == b.env


def test_roundtrip_is_exact_and_bytes_are_deterministic(small, tmp_path):
    path = small.save(tmp_path / "d.npz")
    back = TrajectoryDataset.load(path)
    _same(small, back)
    assert back.meta == small.meta
    assert small.to_bytes() == back.to_bytes()  # fixed zip timestamps: same data, same sha256


def test_file_holds_no_pickle(small, tmp_path):
    path = small.save(tmp_path / "d.npz")
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith(".npy"):
                arr = np.lib.format.read_array(io.BytesIO(zf.read(name)), allow_pickle=False)
                assert arr.dtype != object
    np.load(path, allow_pickle=False)["obs"]  # plain numpy can read the arrays too


def test_load_rejects_bad_files(small, tmp_path):
    with pytest.raises(TrajectoryFileError, match="not found"):
        TrajectoryDataset.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TrajectoryFileError, match="bad trajectory file"):
        TrajectoryDataset.load(tmp_path / "junk.npz")
    # an object array inside would need unpickling: refused, not executed
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        with zipfile.ZipFile(io.BytesIO(small.to_bytes())) as src:
            for name in src.namelist():
                if name != "actions.npy":
                    zf.writestr(name, src.read(name))
        arr = io.BytesIO()
        np.lib.format.write_array(arr, np.array([object()] * small.n_steps, dtype=object), allow_pickle=True)
        zf.writestr("actions.npy", arr.getvalue())
    (tmp_path / "evil.npz").write_bytes(buf.getvalue())
    with pytest.raises(TrajectoryFileError):
        TrajectoryDataset.load(tmp_path / "evil.npz")
    # truncated file
    good = small.to_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(TrajectoryFileError):
        TrajectoryDataset.load(tmp_path / "cut.npz")


def _rewritten(small, tmp_path, name: str, edit) -> Path:
    """A copy of ``small``'s file with one member's bytes (or its ZipInfo) changed by ``edit``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(small.to_bytes())) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == name:
                info, data = edit(info, data)
            dst.writestr(info, data)
    out = tmp_path / f"edited-{name}.npz"
    out.write_bytes(buf.getvalue())
    return out


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("meta.json", lambda i, d: (i, b"[1, 2, 3]"), "not a JSON object"),
        ("meta.json", lambda i, d: (i, b"\xff\xfe"), "bad trajectory file"),
        ("meta.json", lambda i, d: (i, b"[" * 100_000), "bad trajectory file"),
    ],
)
def test_load_names_damaged_members(small, tmp_path, name, edit, message):
    with pytest.raises(TrajectoryFileError, match=message):
        TrajectoryDataset.load(_rewritten(small, tmp_path, name, edit))


def test_load_names_a_corrupt_compressed_stream(small, tmp_path):
    """Bytes flipped inside an LZMA member: lzma's own error must not escape."""
    raw = bytearray(small.to_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("obs.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 20, start + min(info.compress_size, 400), 7):
        raw[k] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    with pytest.raises(TrajectoryFileError, match="bad trajectory file"):
        TrajectoryDataset.load(tmp_path / "flipped.npz")


def test_load_refuses_a_zip_bomb_before_decompressing(small, tmp_path, monkeypatch):
    from dt_circuits.trajectories import dataset as trajectories

    monkeypatch.setattr(trajectories, "MAX_UNCOMPRESSED_BYTES", 1000)
    with pytest.raises(TrajectoryFileError, match="zip bomb"):
        TrajectoryDataset.load(small.save(tmp_path / "ok.npz"))


def test_labels_follow_dti(small):
    """RTG at every step is the episode's final reward; the time input restarts at 0 each episode."""
    for i in range(small.n_episodes):
        s, n = small.starts[i], small.lengths[i]
        assert np.all(small.rtg[s : s + n] == small.rewards[i])
        np.testing.assert_array_equal(small.timesteps[s : s + n], np.arange(n))
    out = small.outcomes
    assert set(out) <= {"goal", "collision", "timeout"}
    assert np.all((small.rewards == 0) == (out == "timeout"))
    # a timeout lasts exactly max_steps
    assert np.all(small.lengths[out == "timeout"] == SPEC.max_steps)


def test_validation_names_the_problem():
    obs = np.zeros((3, 7, 7, 3), np.uint8)
    kw = dict(sources=[0], source_names=("x",), env=SPEC)
    with pytest.raises(InvalidInputError, match="add up"):
        TrajectoryDataset(obs=obs, actions=np.zeros(3), lengths=[2], rewards=[0.5], **kw)
    with pytest.raises(InvalidInputError, match="actions must be"):
        TrajectoryDataset(obs=obs, actions=[0, 1, 7], lengths=[3], rewards=[0.5], **kw)
    with pytest.raises(InvalidInputError, match="max_steps"):
        TrajectoryDataset(obs=obs, actions=np.zeros(3), lengths=[3], rewards=[0.5], sources=[0],
                          source_names=("x",), env=EnvSpec(max_steps=2))  # fmt: skip
    with pytest.raises(InvalidInputError, match="within"):
        TrajectoryDataset(obs=obs, actions=np.zeros(3), lengths=[3], rewards=[1.5], **kw)


def test_scripted_collection_is_a_pure_function_of_the_seed(small):
    again = collect_scripted(DEFAULT_MIX, n_episodes=24, seed=3, env=SPEC, progress=False, chunk=24)
    _same(small, again)  # chunking (and so worker count) does not matter
    other = collect_scripted(DEFAULT_MIX, n_episodes=24, seed=4, env=SPEC, progress=False)
    assert not np.array_equal(small.lengths, other.lengths) or not np.array_equal(small.obs, other.obs)
    one = scripted_episode(DEFAULT_MIX, SPEC, 3, 5)
    s, n = small.starts[5], small.lengths[5]
    np.testing.assert_array_equal(one.obs, small.obs[s : s + n])


def test_scripted_collection_with_workers_matches(small):
    par = collect_scripted(DEFAULT_MIX, n_episodes=24, seed=3, env=SPEC, progress=False, chunk=7, workers=2)
    _same(small, par)


def _play(policy, spec: EnvSpec, seed: int) -> tuple[float, list[str]]:
    env = spec.make()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy.reset(rng)
    fronts = []
    while True:
        fronts.append(front_type(env))
        _, reward, terminated, truncated, _ = env.step(policy.act(env, rng))
        if terminated or truncated:
            return float(reward), fronts


@pytest.mark.parametrize("seed", range(6))
def test_policies_do_what_their_rtg_asks(seed):
    spec = EnvSpec(max_steps=60)
    reward, _ = _play(Survivor(), spec, seed)
    assert reward == 0  # never walks into anything, never onto the goal: times out
    reward, _ = _play(Crasher(target="ball"), spec, seed)
    assert reward == -1
    reward, _ = _play(Crasher(target="wall"), spec, seed)
    assert reward == -1


def test_goal_seeker_mostly_succeeds_and_never_steps_into_anything():
    spec = EnvSpec(max_steps=100)
    rewards = [_play(GoalSeeker(), spec, s)[0] for s in range(20)]
    assert all(r >= 0 for r in rewards)
    assert np.mean(np.array(rewards) > 0) >= 0.9


def test_epsilon_noise_is_seeded():
    spec = EnvSpec(max_steps=60)
    a = _play(EpsilonGreedy(Survivor(), 0.3), spec, 1)
    b = _play(EpsilonGreedy(Survivor(), 0.3), spec, 1)
    assert a == b


def test_parse_mix():
    assert parse_mix(["seeker:0.3:eps=0.1", "survivor:1"]) == (MixEntry("seeker", 0.3, 0.1), MixEntry("survivor", 1.0))
    for bad in (["nobody:1"], ["seeker"], ["seeker:x"], ["seeker:1:eps=2"], ["seeker:0"]):
        with pytest.raises(ConfigError):
            parse_mix(bad)
    assert parse_mix([m.to_text() for m in DEFAULT_MIX]) == DEFAULT_MIX


def test_recorder_keeps_what_the_agent_saw():
    sink: list[Episode] = []
    env = EpisodeRecorder(SPEC.make(), sink, "test")
    obs, _ = env.reset(seed=11)
    seen, actions = [obs["image"].copy()], []
    rng = np.random.default_rng(0)
    while True:
        a = int(rng.integers(0, 3))
        actions.append(a)
        obs, reward, term, trunc, _ = env.step(a)
        if term or trunc:
            break
        seen.append(obs["image"].copy())
    (ep,) = sink
    np.testing.assert_array_equal(ep.obs, np.stack(seen))
    np.testing.assert_array_equal(ep.actions, actions)
    assert ep.reward == reward and ep.env_seed == 11


def test_concat_merges_sources(small):
    both = TrajectoryDataset.concat([small, small])
    assert both.n_episodes == 2 * small.n_episodes
    assert both.source_names == small.source_names
    assert both.summary()["outcomes"]["goal"] == 2 * small.summary()["outcomes"]["goal"]


def _dti_pickle(path, small: TrajectoryDataset) -> None:
    """A file in DTI's TrajectoryWriter layout: (time, env, ...) arrays, dones/truncated flags."""
    n = small.n_steps
    ends = np.zeros(n, bool)
    ends[small.starts + small.lengths - 1] = True
    rewards = np.zeros(n)
    rewards[ends] = small.rewards
    to_tb = lambda a: a.reshape(1, n, *a.shape[1:]).swapaxes(0, 1)  # noqa: E731  (one env, time-major)
    data = {
        "observations": to_tb(small.obs.astype(float)),
        "actions": to_tb(small.actions.astype(np.int64)),
        "rewards": to_tb(rewards),
        "dones": to_tb(ends & (small.rtg != 0)),
        "truncated": to_tb(ends & (small.rtg == 0)),
        "infos": np.zeros((n, 1), dtype=object),
    }
    with gzip.open(path, "wb") as f:
        pickle.dump({"data": data, "metadata": {"args": {}}}, f)


def test_dti_reader_needs_explicit_opt_in(small, tmp_path):
    path = tmp_path / "dti.gz"
    _dti_pickle(path, small)
    with pytest.raises(TrajectoryFileError, match="unpickling runs code"):
        load_dti_trajectories(path)
    back = load_dti_trajectories(path, env=SPEC, allow_pickle=True)
    np.testing.assert_array_equal(back.obs, small.obs)
    np.testing.assert_array_equal(back.lengths, small.lengths)
    np.testing.assert_allclose(back.rewards, small.rewards)
    assert back.source_names == ("dti",)


def test_delayed_seeker_leaves_the_top_rewards_to_direct_seekers():
    from dt_circuits.trajectories.policies import DelayedSeeker

    spec = EnvSpec(max_steps=100)
    for seed in range(4):
        reward, fronts = _play(DelayedSeeker(min_delay=30, max_delay=60), spec, seed)
        assert len(fronts) > 30
        if reward > 0:
            assert reward <= 1 - 0.9 * 30 / spec.max_steps
