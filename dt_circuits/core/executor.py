"""One way to run independent, deterministic tasks: local worker processes (the default) or a Ray cluster.

Population retrains and flake checks are lists of tasks that share nothing: each task is a top-level function
applied to one picklable argument, and each sets its own torch thread count. Results come back in task order,
so what a caller builds from them never depends on the executor, the worker count or which task finished first.
A task of two stages (:func:`run_stages`: retrain, then judge) starts its second stage as soon as its first is
done, so a core freed by one seed's claims trains the next seed instead of waiting for a whole round.

- ``local``: ``workers`` processes on this machine (default: cores // threads per task, at least 1). One worker
  runs the tasks in this process, one after another; more use a ``spawn`` process pool (a spawned worker starts
  clean: no OpenMP state inherited from a parent that already ran torch).
- ``ray``: every task is a Ray remote call asking for ``threads`` CPUs; ``address`` joins a running cluster,
  otherwise a local Ray instance is started with this machine's cores. Needs the ``ray`` extra
  (``pip install "dt-circuits[ray]"``).

This module imports neither torch nor ray at import time.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dt_circuits.core.cores import cores
from dt_circuits.core.errors import ConfigError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSpec:
    """How to run a batch of tasks: ``kind`` local or ray, ``workers`` (local), ``threads`` per task,
    ``address`` (ray: an existing cluster; None starts a local one)."""

    kind: str = "local"
    workers: int | None = None
    threads: int = 1
    address: str | None = None
    #: ray only: CPUs of a local instance started here (None: every core)
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"threads per task must be an integer >= 1, got {self.threads!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or self.workers < 1):
            raise ConfigError(f"workers must be >= 1, got {self.workers!r}")
        if self.address is not None and self.kind != "ray":
            raise ConfigError("--address only applies to --executor ray")

    def local_workers(self, n_tasks: int) -> int:
        wanted = self.workers if self.workers is not None else max(1, cores() // self.threads)
        return max(1, min(wanted, n_tasks))

    def describe(self) -> str:
        if self.kind == "ray":
            return f"ray ({self.address or 'local instance'}), {self.threads} thread(s) per task"
        return f"local, {self.workers or 'auto'} worker(s), {self.threads} thread(s) per task"


def run_tasks(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    spec: ExecutorSpec | None = None,
    *,
    on_done: Callable[[int, Any, float], None] | None = None,
) -> list[Any]:
    """``[fn(t) for t in tasks]`` on the chosen executor, in task order.

    ``fn`` must be a module-level function (it is pickled by name); ``on_done(index, result, seconds since
    start)`` is called in this process as each task finishes (progress lines).
    """
    spec = spec or ExecutorSpec()
    tasks = list(tasks)
    if not tasks:
        return []
    if spec.kind == "ray":
        return _run_ray(fn, tasks, spec, on_done)
    return _run_local(fn, tasks, spec, on_done)


def run_stages(
    first: Callable[[Any], Any],
    second: Callable[[Any], Any],
    tasks: Sequence[Any],
    spec: ExecutorSpec | None = None,
    *,
    on_done: Callable[[int, Any, float], None] | None = None,
) -> list[Any]:
    """``[second(first(t)) for t in tasks]`` on the chosen executor, in task order, each ``second(first(t))``
    queued as soon as ``first(t)`` is done (in a pool of W workers the stages interleave: K tasks of two equal
    stages take ~K/W·2 stage times instead of ceil(K/W)·2). Both functions must be module-level; ``on_done`` is
    called as each task's second stage finishes."""
    spec = spec or ExecutorSpec()
    tasks = list(tasks)
    if not tasks:
        return []
    if spec.kind == "ray":
        return _run_ray(second, tasks, spec, on_done, first=first)
    if spec.local_workers(len(tasks)) == 1:
        return _run_local(functools.partial(_chained, first, second), tasks, spec, on_done)
    start = time.perf_counter()
    results: list[Any] = [None] * len(tasks)
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # a worker per core even for fewer tasks than cores: second stages of early tasks fill them
    workers = spec.local_workers(2 * len(tasks))
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        stage_one = {pool.submit(first, task): i for i, task in enumerate(tasks)}
        stage_two: dict[Any, int] = {}
        pending = set(stage_one)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: stage_one.get(f, stage_two.get(f, 0))):
                if fut in stage_one:
                    follow = pool.submit(second, fut.result())
                    stage_two[follow] = stage_one[fut]
                    pending.add(follow)
                else:
                    i = stage_two[fut]
                    results[i] = fut.result()
                    if on_done:
                        on_done(i, results[i], time.perf_counter() - start)
    return results


def _chained(first: Callable[[Any], Any], second: Callable[[Any], Any], task: Any) -> Any:
    return second(first(task))


def _run_local(fn, tasks, spec: ExecutorSpec, on_done) -> list[Any]:
    start = time.perf_counter()
    workers = spec.local_workers(len(tasks))
    results: list[Any] = [None] * len(tasks)
    if workers == 1:
        for i, task in enumerate(tasks):
            results[i] = fn(task)
            if on_done:
                on_done(i, results[i], time.perf_counter() - start)
        return results
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_done:
                on_done(i, results[i], time.perf_counter() - start)
    return results


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _run_ray(fn, tasks, spec: ExecutorSpec, on_done, first: Callable[[Any], Any] | None = None) -> list[Any]:
    """``fn`` of each task on Ray; with ``first``, ``fn`` of ``first``'s result (Ray passes the reference on, so
    the second stage starts when the first is done, wherever it ran)."""
    try:
        import ray
    except ImportError:
        raise ConfigError('--executor ray needs ray: pip install "dt-circuits[ray]"') from None
    start = time.perf_counter()
    started_here = False
    if not ray.is_initialized():
        if spec.address:
            ray.init(address=spec.address, log_to_driver=False)
        else:
            ray.init(num_cpus=spec.num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
        started_here = True
    try:
        remote = ray.remote(num_cpus=spec.threads, max_retries=0)(fn)
        if first is not None:
            before = ray.remote(num_cpus=spec.threads, max_retries=0)(first)
            tasks = [before.remote(task) for task in tasks]
        refs = [remote.remote(task) for task in tasks]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(tasks)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = index[ref]
                results[i] = ray.get(ref)
                if on_done:
                    on_done(i, results[i], time.perf_counter() - start)
        return results
    finally:
        if started_here:
            ray.shutdown()
