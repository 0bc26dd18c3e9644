"""Torch thread policy for this workload.

Claims, rollouts and scans run many small batches; with intra-op threads those spin and contend (measured
here: a batch-1 forward took ~70 ms with 2 threads beside another busy process, 1.5 ms with one). So the CLI
and the test suite use one intra-op thread unless ``DT_CIRCUITS_THREADS`` says otherwise; parallelism comes
from worker processes instead.
"""

from __future__ import annotations

import os

import torch


def configure_threads() -> int:
    n = int(os.environ.get("DT_CIRCUITS_THREADS", "1"))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
