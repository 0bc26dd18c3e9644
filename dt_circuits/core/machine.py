"""What machine a result came from, where it matters: trained weight bytes depend on the CPU's kernels."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name with its family/model/stepping numbers (``/proc/cpuinfo``), else what the platform
    module says.

    The numbers matter: a virtual machine may show a generic name ("Intel(R) Xeon(R) Processor") for CPU
    generations whose kernels, and so whose trained weight bytes, differ.
    """
    info = Path("/proc/cpuinfo")
    if info.exists():
        fields: dict[str, str] = {}
        for line in info.read_text().splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            numbers = [f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if k in fields]
            return fields["model name"] + (f" ({', '.join(numbers)})" if numbers else "")
    return platform.processor() or platform.machine()


#: environment variables that choose the math kernels torch trains with, and so the trained bytes; read when
#: torch and MKL start, so they must be set before the process imports torch
KERNEL_VARIABLES = ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def kernel_settings() -> dict[str, str]:
    """The kernel-choosing variables set in this process (unset ones left out) and the vector capability ATen
    dispatches to (``aten``, e.g. ``AVX512`` or ``AVX2``) when torch is already imported.

    Two trainings give the same bytes only on the same CPU model *and* the same settings: on one machine
    ``MKL_CBWR=AVX2`` or ``ATEN_CPU_CAPABILITY=avx2`` picks other kernels, i.e. a CPU change in all but name.
    """
    import contextlib
    import os
    import sys

    out = {k: os.environ[k] for k in KERNEL_VARIABLES if os.environ.get(k)}
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(AttributeError):  # a torch without the query
            out["aten"] = str(torch.backends.cpu.get_cpu_capability())
    return out


def machine_kind() -> dict[str, object]:
    """What decides trained weight bytes besides the code and the data: the CPU model and the kernel settings."""
    return {"cpu": cpu_model(), "kernels": kernel_settings()}


def same_kind(recorded: dict[str, object], now: dict[str, object]) -> bool:
    """Would a training on ``now`` give the bytes one on ``recorded`` gave (same CPU model, same kernel settings)?
    Both are :func:`machine_kind` records; a record from before kernels were recorded counts as no variable set,
    and ATen's capability is compared only where both record it."""
    if recorded.get("cpu") != now.get("cpu"):
        return False
    old = dict(recorded.get("kernels") or {})  # type: ignore[call-overload]
    new = dict(now.get("kernels") or {})  # type: ignore[call-overload]
    if "aten" not in old or "aten" not in new:
        old.pop("aten", None)
        new.pop("aten", None)
    return old == new
