"""Plumbing for the training notebook: default settings, checks, checkpoints, hardware facts.

The training loop itself is in notebooks/03_train.ipynb, where a learner can read it.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
from pathlib import Path

import torch

from .io import atomic_directory, atomic_write_json, read_json
from .sizes import N_POSITIONS, get_size

# Learning rates shrink as models grow; dropout grows, since the bigger models overfit this tiny
# book within a few epochs.
PEAK_LR = {"1M": 2e-3, "3M": 2e-3, "7M": 1.5e-3, "15M": 1e-3, "22M": 8e-4, "37M": 6e-4, "59M": 5e-4, "100M": 4e-4}
DROPOUT = {"1M": 0.1, "3M": 0.1, "7M": 0.1, "15M": 0.2, "22M": 0.2, "37M": 0.2, "59M": 0.2, "100M": 0.2}

# The quick profile gives every size the same wall time, about 60 s of training and evaluation on
# 2 CPU cores: these step counts come from the step times measured on such a machine
# (benchmarks/results/train_step_cpu.json), less two evaluations. time_budget_s stops a slower
# machine at the same wall time; a faster one finishes early.
QUICK_STEPS = {"1M": 104, "3M": 52, "7M": 30, "15M": 16, "22M": 10, "37M": 6, "59M": 4, "100M": 2}

PROFILE_SETTINGS = {
    # a few steps of everything: tests the plumbing
    "smoke": dict(block_size=32, batch_size=4, max_steps=3, eval_interval=3, checkpoint_interval=2, patience=1,
                  warmup_steps=1, train_eval_tokens=1024, val_tokens=1024, time_budget_s=None),
    # every size on the same ~1-minute CPU budget; validation always scored in full
    "quick": dict(block_size=128, batch_size=16, max_steps=None, eval_interval=None, checkpoint_interval=None,
                  patience=100, warmup_steps=None, train_eval_tokens=2048, val_tokens=None, time_budget_s=65),
    # train to early stopping
    "full": dict(block_size=256, batch_size=32, max_steps=3000, eval_interval=10, checkpoint_interval=100,
                 patience=10, warmup_steps=50, train_eval_tokens=None, val_tokens=None, time_budget_s=None),
}


# Fine-tuning a pretrained GPT-2 (notebook 06): a learning rate ten times smaller than from scratch,
# since large steps would wash out what the weights already know, and GPT-2's own dropout. The quick
# profile gives it the step budget of our 100M size (GPT-2 has 124M parameters, distilgpt2 82M);
# the full profile stops sooner, since a pretrained model overfits a small book within a few epochs.
FINETUNE = {"lr": 1e-4, "dropout": 0.1, "budget_like": "100M", "full_patience": 5}


def training_settings(model_size: str, profile: str, finetune: bool = False, **overrides) -> dict:
    """The settings for one run: the profile's defaults for this size, then any override that is not None.

    With `finetune=True` (a pretrained model, notebook 06) `model_size` is ignored and the
    fine-tuning defaults above are used.
    """
    size = FINETUNE["budget_like"] if finetune else get_size(model_size).name
    settings = dict(PROFILE_SETTINGS[profile])
    settings.update(lr=PEAK_LR[size], dropout=DROPOUT[size], weight_decay=0.1, grad_clip=1.0)
    if finetune:
        settings.update(lr=FINETUNE["lr"], dropout=FINETUNE["dropout"])
        if profile == "full":
            settings["patience"] = FINETUNE["full_patience"]
    settings["micro_batch_size"] = settings["batch_size"]
    if profile == "quick":
        settings["max_steps"] = QUICK_STEPS[size]
        settings["eval_interval"] = max(1, QUICK_STEPS[size] // 2)  # two evaluations: mid-way and at the end
        settings["checkpoint_interval"] = max(1, QUICK_STEPS[size] // 2)
        settings["warmup_steps"] = max(1, QUICK_STEPS[size] // 10)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("batch_size") is not None and overrides.get("micro_batch_size") is None:
        settings["micro_batch_size"] = settings["batch_size"]
    check_settings(settings)
    return settings


def check_settings(s: dict) -> None:
    """Refuse impossible settings before any work starts, saying what would be valid."""
    problems = []
    if not (isinstance(s["lr"], int | float) and 0 < s["lr"] < 1):
        problems.append(f"lr={s['lr']}: the learning rate must be between 0 and 1 (typically 1e-4 to 3e-3)")
    for key in ("batch_size", "max_steps", "eval_interval", "checkpoint_interval", "patience"):
        if not (isinstance(s[key], int) and s[key] >= 1):
            problems.append(f"{key}={s[key]}: must be a whole number, at least 1")
    if not (isinstance(s["block_size"], int) and 2 <= s["block_size"] <= N_POSITIONS):
        problems.append(f"block_size={s['block_size']}: the context must be between 2 and the model's "
                        f"{N_POSITIONS} positions")
    if not 0 <= s["dropout"] < 1:
        problems.append(f"dropout={s['dropout']}: must be in [0, 1)")
    if not 0 <= s["weight_decay"] < 1:
        problems.append(f"weight_decay={s['weight_decay']}: must be in [0, 1)")
    if not (isinstance(s["warmup_steps"], int) and 0 <= s["warmup_steps"] <= s["max_steps"]):
        problems.append(f"warmup_steps={s['warmup_steps']}: must be between 0 and max_steps ({s['max_steps']})")
    micro = s["micro_batch_size"]
    if not (isinstance(micro, int) and 1 <= micro <= s["batch_size"] and s["batch_size"] % micro == 0):
        problems.append(f"micro_batch_size={micro}: must divide batch_size ({s['batch_size']})")
    for key in ("train_eval_tokens", "val_tokens"):
        if s[key] is not None and not (isinstance(s[key], int) and s[key] >= 1):
            problems.append(f"{key}={s[key]}: must be at least 1, or None (the whole validation text's length)")
    if s["time_budget_s"] is not None and not s["time_budget_s"] > 0:
        problems.append(f"time_budget_s={s['time_budget_s']}: must be positive, or None for no limit")
    if problems:
        raise ValueError("invalid training settings:\n  " + "\n  ".join(problems))


def mixed_precision() -> str:
    """'bf16' on GPUs that have it (Ampere and newer), 'fp16' with loss scaling on older ones (T4), else 'no'."""
    if not torch.cuda.is_available():
        return "no"
    major, _ = torch.cuda.get_device_capability()
    return "bf16" if major >= 8 else "fp16"


def peak_memory_mb() -> float:
    """Peak GPU memory allocated, or on a CPU the process's peak resident memory."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def flops_per_token(n_params: int, n_layer: int, n_embd: int, context: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward and backward) plus attention's 12·L·d·T."""
    return 6 * n_params + 12 * n_layer * n_embd * context


# --------------------------------------------------------------------------------------------
# Checkpoints: OUT/models/<size>/training/step_000123/ (accelerate's state + trainer_state.json)
# --------------------------------------------------------------------------------------------

KILL_FOR_TEST_ENV = "JUNGLEGPT_TEST_KILL_DURING_CHECKPOINT"


def save_checkpoint(accelerator, folder: Path, step: int, trainer_state: dict) -> Path:
    """Save everything needed to resume at `step`, atomically, then delete older checkpoints."""
    path = Path(folder) / f"step_{step:06d}"
    with atomic_directory(path) as tmp:
        accelerator.save_state(str(tmp))  # model, optimizer, scheduler, loss scaler, RNG states
        if os.environ.get(KILL_FOR_TEST_ENV) == str(step):
            os._exit(137)  # the tests' stand-in for a kill -9 in the middle of writing a checkpoint
        atomic_write_json(tmp / "trainer_state.json", trainer_state)
    for old in Path(folder).glob("step_*"):
        if old != path:
            shutil.rmtree(old, ignore_errors=True)
    return path


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (half-written ones are hidden temporary folders, never matched)."""
    done = sorted(p for p in Path(folder).glob("step_*") if (p / "trainer_state.json").exists())
    return done[-1] if done else None


def load_checkpoint(accelerator, path: Path) -> dict:
    accelerator.load_state(str(path))
    return read_json(Path(path) / "trainer_state.json")


def clear_stale_temporaries(folder: Path) -> None:
    """Remove half-written folders left by a run that was killed while saving."""
    for tmp in Path(folder).glob(".*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def halve_batch_on_oom(run_step, batch_size: int, micro_batch_size: int, on_change=print):
    """Call `run_step(micro_batch_size)`; on a GPU out-of-memory error, halve the micro-batch and retry.

    The optimizer step still sees `batch_size` sequences: gradient accumulation makes up the
    difference. Returns (result, micro_batch_size that worked).
    """
    while True:
        try:
            return run_step(micro_batch_size), micro_batch_size
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            smaller = next((m for m in range(micro_batch_size // 2, 0, -1) if batch_size % m == 0), None)
            if smaller is None:
                raise torch.OutOfMemoryError(
                    "out of GPU memory even with one sequence per forward pass: use a smaller model_size "
                    "or block_size, or a GPU with more memory."
                ) from None
            on_change(f"GPU out of memory with {micro_batch_size} sequences per forward pass: retrying with "
                      f"{smaller} and {batch_size // smaller} accumulation steps (same effective batch).")
            micro_batch_size = smaller
