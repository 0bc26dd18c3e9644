"""The thread policy (core/threads.py): one torch thread, and the native BLAS / OpenMP pools numpy, SciPy and
scikit-learn load sized alike — those loaded before it runs and those loaded after — unless the user sized them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from dt_circuits.core.threads import configure_threads
configure_threads()
import scipy.linalg, sklearn.linear_model  # loaded after: SciPy's OpenBLAS, scikit-learn's OpenMP
import torch
from threadpoolctl import threadpool_info
pools = [(i["prefix"], i["num_threads"]) for i in threadpool_info()]
print(json.dumps({"torch": torch.get_num_threads(), "pools": pools}))
"""


def _run(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env={**clean, **env},
                         check=True, timeout=120)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_native_pool_gets_the_policys_threads():
    for n in ("1", "2"):
        got = _run(DT_CIRCUITS_THREADS=n)
        assert got["torch"] == int(n)
        prefixes = {p for p, _ in got["pools"]}
        assert {"libgomp"} <= prefixes and any("openblas" in p for p in prefixes), got  # numpy's, SciPy's, sklearn's
        assert all(k == int(n) for _, k in got["pools"]), got


def test_a_user_who_sized_the_pools_keeps_their_setting():
    got = _run(DT_CIRCUITS_THREADS="1", OPENBLAS_NUM_THREADS="2")
    assert got["torch"] == 1
    assert [k for p, k in got["pools"] if "openblas" in p] == [2, 2], got


def test_the_workers_cap_is_read_from_the_environment(monkeypatch):
    """``DT_CIRCUITS_WORKERS`` caps the worker processes a pool starts (1: the work runs in this process); unset,
    every core; a bad value is a one-line error naming the variable."""
    import pytest

    from dt_circuits.core.cores import WORKERS_ENV, cores
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.evaluation.pool import fork_map

    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert cores() == (os.cpu_count() or 1)
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert cores() == 1
    assert fork_map(lambda shared, task: (os.getpid(), shared + task), [1, 2, 3], 10) == [(os.getpid(), 11),
                                                                                       (os.getpid(), 12),
                                                                                       (os.getpid(), 13)]  # fmt: skip
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ConfigError, match=WORKERS_ENV):
            cores()


def test_a_bad_thread_count_is_one_line(monkeypatch):
    import pytest

    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.threads import policy_threads

    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("DT_CIRCUITS_THREADS", bad)
        with pytest.raises(ConfigError, match="DT_CIRCUITS_THREADS"):
            policy_threads()
    monkeypatch.setenv("DT_CIRCUITS_THREADS", "3")
    assert policy_threads() == 3
