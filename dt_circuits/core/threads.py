"""Thread policy for this workload: torch, and the native pools numpy, SciPy and scikit-learn bring.

Claims, rollouts and scans run many small batches; with intra-op threads those spin and contend (measured
here: a batch-1 forward took ~70 ms with 2 threads beside another busy process, 1.5 ms with one). So the CLI
and the test suite use one intra-op thread unless ``DT_CIRCUITS_THREADS`` says otherwise; parallelism comes
from worker processes instead.

The same holds for OpenBLAS (numpy's and SciPy's) and OpenMP (scikit-learn's): each starts a pool of one thread
per core, whose spinning took CPU from the other worker process. Measured on an AMD EPYC (2 cores, raw-index's
claims, warm cache): one process 33.2 CPU-s for 24.2 s wall with those pools, 26.7 for 26.7 at one thread each;
two worker processes 46.4 CPU-s / 23.5 s wall against 41.1 / 20.9. Every claim's JSON on raw-index, one-hot and
both DTI references was identical either way (the bootstraps' and probes' BLAS calls split no sum across
threads). A user who sets ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` keeps their own setting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

from dt_circuits.core.cores import env_count

#: the variables native pools read when their library loads (SciPy's OpenBLAS and scikit-learn's OpenMP load
#: after this runs, with their first import)
NATIVE_POOL_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def policy_threads() -> int:
    """The policy's thread count: ``DT_CIRCUITS_THREADS`` (an integer >= 1), else 1."""
    return env_count("DT_CIRCUITS_THREADS") or 1


def _pools_sized() -> bool:
    """Whether the user sized the native pools themselves (then they are left alone)."""
    return any(var in os.environ for var in NATIVE_POOL_VARS)


def configure_threads() -> int:
    """One torch intra-op thread (or ``DT_CIRCUITS_THREADS``), and as many for the native BLAS / OpenMP pools
    unless the user sized those; returns torch's thread count. For this process from now on (the CLI, the test
    suite, the app); :func:`claims_threads` for one block."""
    n = policy_threads()
    torch.set_num_threads(n)
    if not _pools_sized():
        for var in NATIVE_POOL_VARS:  # libraries loaded later, in this process and in the workers it starts
            os.environ[var] = str(n)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)  # the pools already loaded (numpy's OpenBLAS, torch's OpenMP)
    return torch.get_num_threads()


@contextmanager
def claims_threads() -> Iterator[int]:
    """The policy's threads inside the block only, then the process's own again: the pytest plugin evaluates claims
    so (their numbers are those the CLI records, which can depend on the thread count) while a user's other tests
    keep their threads."""
    from threadpoolctl import threadpool_limits

    n, before = policy_threads(), torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with nullcontext() if _pools_sized() else threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(before)
