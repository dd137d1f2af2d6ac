"""What the benchmark ran on, for the report."""

import os
import platform
from pathlib import Path

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    memory = psutil.virtual_memory().total / 1024**3
    return (
        f"{os.cpu_count()} cores ({cpu_model()}), {memory:.0f} GiB memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def steal_seconds() -> float | None:
    """CPU time, over all cores since boot, that the hypervisor gave to other machines (steal):
    on a shared host it takes turns from every process here, whatever they are. None where the
    system does not count it."""
    stolen: float | None = getattr(psutil.cpu_times(), "steal", None)
    return stolen
