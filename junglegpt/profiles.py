"""Run profiles: how much work each notebook does.

- smoke: a few steps of everything, to test the plumbing (minutes on a laptop CPU);
- quick: the whole series on a CPU in about a quarter of an hour, every result labelled "quick";
- full: the real experiment (the default where a CUDA GPU is found).
"""

from __future__ import annotations

PROFILES = ("smoke", "quick", "full")

# How much of the held-out book (The Second Jungle Book, cleaned) notebooks 04, 06 and 07 score:
# all of it in the full profile, its first characters on a CPU-sized run. The same prefix everywhere,
# so that their held-out numbers can be compared.
HELDOUT_CHARS = {"smoke": 5_000, "quick": 15_000, "full": None}


def resolve_profile(profile: str) -> str:
    """'auto' (or '') becomes 'full' on a CUDA machine and 'quick' elsewhere; others are checked."""
    profile = (profile or "auto").strip().lower()
    if profile == "auto":
        from .environment import cuda_available, on_colab, on_kaggle

        if cuda_available():
            return "full"
        if on_kaggle() or on_colab():
            where = ("Settings > Accelerator > GPU T4" if on_kaggle() else "Runtime > Change runtime type > T4 GPU")
            print(f"No GPU in this session, so the quick profile (a CPU-sized run, labelled 'quick'). For the "
                  f"real experiment, turn the GPU on ({where}) and run the notebook again.")
        return "quick"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)} (or 'auto').")
    return profile


def run_label(profile: str, device: str, precision: str | None = None) -> str:
    """The label every figure and result carries, e.g. 'quick, CPU, bf16' or 'full, CUDA, fp16'."""
    label = f"{profile}, {'CPU' if device == 'cpu' else device.upper()}"
    return f"{label}, {precision}" if precision else label
