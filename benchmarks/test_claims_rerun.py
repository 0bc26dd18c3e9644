"""A researcher's loop: the claims command on a checkpoint it has run before (edit a claim, run again) against the
first run on those weights, side by side in one run (issue 29).

What a run on given weights computes and every later run would repeat is kept in the disk cache (core/cache.py),
keyed by the weights' digest, the request, the code and the CPU kind: the recorded rollouts, probe fits, DAS
bases and wall traces (the walks, the claims' SAEs and MemoryDT's DAS fits ship with the package). The first run
pays for them; a re-run loads them. Both runs here start a fresh process on the same machine, with the rendered
families (and any walk not shipped) already on disk (as on any machine after its first claims run); the first
run's cache folder starts with only those.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from dt_circuits.core.cache import CACHE_ENV, cache_dir
from dt_circuits.core.machine import cpu_model
from dt_circuits.core.paths import CHECKPOINTS_DIR, reference_checkpoint

CHECKPOINTS = [str(CHECKPOINTS_DIR / "raw-index"), str(CHECKPOINTS_DIR / "one-hot"), str(reference_checkpoint())]
#: what a machine has cached before it runs a new checkpoint's claims: independent of the weights
SHARED = ("walk-", "rendered-states-")


def _run(exe: str, path: str, out, env) -> float:
    start = time.perf_counter()
    subprocess.run([exe, "claims", "--checkpoint", path, "--no-report", "--json", str(out)], check=False,
                   capture_output=True, env=env)  # fmt: skip
    return time.perf_counter() - start


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[os.path.basename(p).removesuffix(".pt") for p in CHECKPOINTS])
def test_a_rerun_against_the_first_run_on_the_same_weights(benchmark, figure, path, tmp_path):
    exe = shutil.which("dt-circuits") or pytest.skip("dt-circuits is not on PATH")
    if not os.path.exists(path):
        pytest.skip(f"{path} missing")
    folder = tmp_path / "cache"
    folder.mkdir()
    subprocess.run(
        [exe, "claims", "--checkpoint", path, "--only", "rtg-embedding-forward", "--no-report"],
        check=True,
        capture_output=True,
    )  # fmt: skip  (the walk and families in the default cache)
    for f in (cache_dir() or folder).glob("*.npz"):
        if f.name.startswith(SHARED):
            shutil.copy(f, folder / f.name)
    env = {**os.environ, CACHE_ENV: str(folder)}
    first = _run(exe, path, tmp_path / "first.json", env)
    benchmark.pedantic(lambda: _run(exe, path, tmp_path / "again.json", env), rounds=1, iterations=1)
    again = benchmark.stats.stats.mean
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("first.json", "again.json"))
    strip = lambda d: json.dumps({**d, "seconds": 0, "claims": [{**c, "seconds": 0} for c in d["claims"]]})  # noqa: E731
    assert strip(a) == strip(b), "the re-run's numbers differ from the first run's"
    name = os.path.basename(path).removesuffix(".pt")
    figure(benchmark, f"claims command, first run on the weights, s ({name})", first, "{:.1f}")
    figure(benchmark, f"claims command, re-run (disk cache), s ({name})", again, "{:.1f}")
    figure(benchmark, f"re-run / first run ({name})", again / first, "{:.2f}")
    benchmark.extra_info["cpu"] = cpu_model()
