"""What a benchmark ran on, for its table's heading."""

import os
import platform
from pathlib import Path


def cpu_name():
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe():
    """e.g. 'AMD EPYC 9B14, 2 cores; keras 3.15.1 on tensorflow'."""
    import keras

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_name()}, {cores} cores; keras {keras.__version__} on {keras.backend.backend()}"
