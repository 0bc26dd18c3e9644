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
