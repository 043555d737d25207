"""Where are we running (Kaggle, Colab, a laptop, CI) and on what hardware?"""

from __future__ import annotations

import os
import platform


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
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores (torch {torch.__version__}, {torch.get_num_threads()} threads)"


def device_kind() -> str:
    """'cuda' or 'cpu': the word used in result labels ("quick, CPU")."""
    return "cuda" if cuda_available() else "cpu"
