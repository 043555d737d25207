"""Where are we running (Kaggle, Colab, a laptop, CI) and on what hardware?"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def on_kaggle() -> bool:
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def on_colab() -> bool:
    return "COLAB_RELEASE_TAG" in os.environ or "COLAB_GPU" in os.environ


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def describe_hardware() -> str:
    """A one-line description for result files: the GPU's name, or the CPU and its core count."""
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return ", ".join(names) + f" (CUDA {torch.version.cuda}, torch {torch.__version__})"
    cpu = cpu_model() or platform.processor() or platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def _cpuinfo_field(name: str) -> str | None:
    """The first `name : value` line's value in /proc/cpuinfo (Linux); None elsewhere."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(name)), None)


def cpu_model() -> str | None:
    """The CPU's model name, e.g. 'Intel(R) Xeon(R) Processor'; None where /proc/cpuinfo does not exist."""
    return _cpuinfo_field("model name")


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags (avx512_bf16, amx_tile, ...); empty where /proc/cpuinfo does not exist."""
    return set((_cpuinfo_field("flags") or "").split())


def physical_cores() -> int | None:
    """Physical cores this process may use: hyper-threads of one core count once (the distinct
    `physical id`, `core id` pairs of /proc/cpuinfo among the CPUs we may run on); elsewhere the
    logical count, or None."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        allowed = None
    try:
        blocks = Path("/proc/cpuinfo").read_text().split("\n\n")
    except OSError:
        return len(allowed) if allowed else os.cpu_count()
    cores = set()
    for block in blocks:
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "processor" in fields and (allowed is None or int(fields["processor"]) in allowed):
            cores.add((fields.get("physical id"), fields.get("core id", fields["processor"])))
    return len(cores) or os.cpu_count()
