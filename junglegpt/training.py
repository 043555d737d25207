"""Plumbing for the training notebook: default settings, checks, checkpoints, hardware facts.

The training loop itself is in notebooks/03_train.ipynb, where a learner can read it. What the
notebook needs before its lesson (its parameters checked, the settings, the folders, the inputs of
notebooks 01 and 02) is one call, `prepare_run`, so that the lesson comes first.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import resource
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch

from .environment import cpu_flags
from .io import atomic_directory, atomic_write_json, exclusive, read_json
from .paths import OutputDirs
from .sizes import N_POSITIONS, ModelSize, get_size

# Learning rates shrink as models grow; dropout grows, since the bigger models overfit this tiny
# book within a few epochs.
PEAK_LR = {"1M": 2e-3, "3M": 2e-3, "7M": 1.5e-3, "15M": 1e-3, "22M": 8e-4, "37M": 6e-4, "59M": 5e-4, "100M": 4e-4}
DROPOUT = {"1M": 0.1, "3M": 0.1, "7M": 0.1, "15M": 0.2, "22M": 0.2, "37M": 0.2, "59M": 0.2, "100M": 0.2}

# The quick profile gives every size the same wall time (time_budget_s) for training and its two
# evaluations. Its step count is not a constant: notebook 03 times one training step and one
# evaluation batch of this size on this machine (`steps_for_budget`), and sets max_steps, and with
# it the schedule's horizon, so that the budget is filled. A faster machine, or bf16, means more
# steps and a better model, not an earlier finish.

PROFILE_SETTINGS = {
    # a few steps of everything: tests the plumbing
    "smoke": dict(block_size=32, batch_size=4, max_steps=3, eval_interval=3, checkpoint_interval=2, patience=1,
                  warmup_steps=1, train_eval_tokens=1024, val_tokens=1024, time_budget_s=None),
    # every size on the same ~1-minute CPU budget; validation always scored in full. max_steps=None:
    # as many steps as fit in time_budget_s, measured at the start of the run (see above)
    "quick": dict(block_size=128, batch_size=16, max_steps=None, eval_interval=None, checkpoint_interval=None,
                  patience=100, warmup_steps=None, train_eval_tokens=2048, val_tokens=None, time_budget_s=60),
    # train to early stopping
    "full": dict(block_size=256, batch_size=32, max_steps=3000, eval_interval=10, checkpoint_interval=100,
                 patience=10, warmup_steps=50, train_eval_tokens=None, val_tokens=None, time_budget_s=None),
}

# How the learning rate moves after its warm-up (see `learning_rate`), weight averaging and decay.
# "cosine": down to zero at max_steps, for runs whose length is known in advance (smoke, quick).
# "plateau": constant until validation stalls for `decay_patience` evaluations, then a linear decay
# to zero over `decay_fraction` of the steps taken so far, and stop: for runs that stop on their own
# (full), where a cosine over max_steps would never get to decay. `ema_decay`: evaluate and keep an
# exponential moving average of the weights (0: none).
# The full profile's recipe was chosen by scripts/ablation.py, one change at a time, on validation
# bits per byte (results/ablation-gpu/, the README's ablation table): the moving average and a
# stronger weight decay each helped; the plateau schedule made no difference, and was kept because
# it does not depend on max_steps.
RECIPE_SETTINGS = {
    "smoke": dict(schedule="cosine", decay_patience=None, decay_fraction=None, ema_decay=0.0, weight_decay=0.1),
    "quick": dict(schedule="cosine", decay_patience=None, decay_fraction=None, ema_decay=0.0, weight_decay=0.1),
    "full": dict(schedule="plateau", decay_patience=3, decay_fraction=0.3, ema_decay=0.99, weight_decay=0.5),
}
SCHEDULES = ("cosine", "plateau")


# Fine-tuning a pretrained GPT-2 (notebook 06): a learning rate ten times smaller than from scratch,
# since large steps would wash out what the weights already know, and GPT-2's own dropout. The quick
# profile gives it the step budget of our 100M size (GPT-2 has 124M parameters, distilgpt2 82M);
# the full profile stops sooner, since a pretrained model overfits a small book within a few epochs.
FINETUNE = {"lr": 1e-4, "dropout": 0.1, "budget_like": "100M", "full_patience": 5, "ema_decay": 0.0,
            "weight_decay": 0.1}  # the recipe study trained from scratch: fine-tuning keeps the settings before it


# Notebook 03's parameters that replace a setting's default (None: keep it), in the order of its
# parameters cell, and all of that cell's parameters: `prepare_run` reads each by name, and a test
# checks that the cell and NOTEBOOK_PARAMETERS list the same names.
OVERRIDES = ("lr", "batch_size", "micro_batch_size", "block_size", "max_steps", "warmup_steps", "eval_interval",
             "checkpoint_interval", "patience", "dropout", "weight_decay", "train_eval_tokens", "val_tokens",
             "time_budget_s", "schedule", "decay_patience", "decay_fraction", "ema_decay")
NOTEBOOK_PARAMETERS = ("out_dir", "profile", "model_size", "seed", "force", "precision", *OVERRIDES,
                       "init_from", "train_file", "run_name")


def training_settings(model_size: str, profile: str, finetune: bool = False, **overrides) -> dict:
    """The settings for one run: the profile's defaults for this size, then any override that is not None.

    With `finetune=True` (a pretrained model, notebook 06) `model_size` is ignored and the
    fine-tuning defaults above are used.
    """
    size = FINETUNE["budget_like"] if finetune else get_size(model_size).name
    settings = dict(PROFILE_SETTINGS[profile], **RECIPE_SETTINGS[profile])
    settings.update(lr=PEAK_LR[size], dropout=DROPOUT[size], grad_clip=1.0)
    if finetune:
        settings.update({k: FINETUNE[k] for k in ("lr", "dropout", "ema_decay", "weight_decay")})
        if profile == "full":
            settings["patience"] = FINETUNE["full_patience"]
    settings["micro_batch_size"] = settings["batch_size"]
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("batch_size") is not None and overrides.get("micro_batch_size") is None:
        settings["micro_batch_size"] = settings["batch_size"]
    if settings["max_steps"] is not None:
        settings = with_step_count(settings, settings["max_steps"])
    elif settings["time_budget_s"] is None:
        raise ValueError("invalid training settings:\n  max_steps=None needs a time_budget_s to fill; set one of them")
    check_settings(settings)
    return settings


def settings_sources(model_size: str, profile: str, finetune: bool = False, **overrides) -> dict[str, str]:
    """Where each of `training_settings(...)`'s values comes from, in words: the profile, its recipe,
    the size's row of PEAK_LR and DROPOUT, fine-tuning, an override, or derived from another setting."""
    size = FINETUNE["budget_like"] if finetune else get_size(model_size).name
    sources = {key: f"profile {profile}" for key in PROFILE_SETTINGS[profile]}
    sources.update({key: f"profile {profile}: recipe" for key in RECIPE_SETTINGS[profile]})
    sources.update(lr=f"size {size} (PEAK_LR)", dropout=f"size {size} (DROPOUT)", grad_clip="fixed",
                   micro_batch_size="= batch_size")
    if finetune:
        sources.update({key: "fine-tuning (FINETUNE)" for key in ("lr", "dropout", "ema_decay", "weight_decay")})
    if PROFILE_SETTINGS[profile]["max_steps"] is None and overrides.get("max_steps") is None:
        sources["max_steps"] = f"measured: as many steps as fit in time_budget_s ({profile})"
        for key in ("eval_interval", "checkpoint_interval", "warmup_steps"):
            if PROFILE_SETTINGS[profile][key] is None:
                sources[key] = "derived from max_steps"
    sources.update({key: "override" for key, value in overrides.items() if value is not None})
    return sources


def check_seed(seed) -> int:
    """`seed` as a whole number that every library accepts (NumPy's limit: 0 to 2**32 - 1), or a
    ValueError that says so."""
    try:
        number = int(seed)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(seed, bool) or float(seed) != number or not 0 <= number < 2**32:
        raise ValueError(f"seed={seed!r}: choose a whole number from 0 to 2**32 - 1 (4294967295), e.g. 1894")
    return number


@dataclass(frozen=True)
class TrainingRun:
    """What notebook 03 needs from its parameters before its lesson starts (`prepare_run`)."""

    out: OutputDirs  # the folder notebooks 01 and 02 wrote to
    profile: str  # smoke, quick or full ("auto" resolved)
    seed: int
    size: ModelSize | None  # the size's row of the table; None when fine-tuning (notebook 06)
    requested_precision: str  # auto, fp32, bf16 or fp16: the one trained in is chosen later
    settings: dict  # the profile's defaults for this size, with the overrides on top
    sources: dict  # where each setting comes from, in words (`settings_sources`)
    run_name: str  # the model's folder under OUT/models
    model_dir: Path
    tokenizer_dir: Path | str  # notebook 02's tokenizer, or the pretrained model's own (06)
    train_path: Path  # notebook 01's train.txt, or `train_file` (notebook 07)
    val_path: Path

    @property
    def state_dir(self) -> Path:
        """The run's checkpoints, removed when its model is saved."""
        return self.model_dir / "training"


def prepare_run(parameters: Mapping) -> TrainingRun:
    """Notebook 03's plumbing before its lesson, in one call. `parameters` is the notebook's
    `globals()`, of which it reads the names in NOTEBOOK_PARAMETERS (those of its parameters cell,
    as papermill set them).

    Checks every parameter, refusing a bad one before anything else happens (an unknown size first,
    before any data is looked for); works out the settings (`training_settings`) and where each
    comes from; names the model's folder, OUT/models/<run_name> (the size, or for notebook 06
    finetuned/<the pretrained model's name>); sets the figures' style; and makes the split (notebook
    01) and the tokenizer (02) where they are missing, as in a fresh Kaggle or Colab session
    (`runs.ensure_split_and_tokenizer`). Notebook 06 passes `init_from` (a pretrained model, which
    brings its own tokenizer) and 07 `train_file` (the training text).
    """
    from .figures import setup_style
    from .paths import resolve_out_dir
    from .profiles import resolve_profile
    from .runs import ensure_split_and_tokenizer

    missing = [name for name in NOTEBOOK_PARAMETERS if name not in parameters]
    if missing:
        raise KeyError(f"notebook 03's parameters cell does not set {', '.join(missing)}")
    p = {name: parameters[name] for name in NOTEBOOK_PARAMETERS}
    init_from, train_file = p["init_from"], p["train_file"]
    size = None if init_from else get_size(p["model_size"])  # an unknown name is refused here
    out = resolve_out_dir(p["out_dir"])
    profile = resolve_profile(p["profile"])
    seed = check_seed(p["seed"])
    requested_precision = check_precision(p["precision"])
    overrides = {name: p[name] for name in OVERRIDES}
    finetune = init_from is not None
    settings = training_settings(p["model_size"], profile, finetune, **overrides)
    run_name = p["run_name"]
    if run_name is None:  # the size's name; fine-tuning: finetuned/<the model's name>
        run_name = size.name if size else f"finetuned/{init_from.rstrip('/').split('/')[-1]}"
    model_dir = out.model(run_name)  # a name leading out of OUT/models is refused here
    setup_style()
    sources = settings_sources(p["model_size"], profile, finetune, **overrides)
    ensure_split_and_tokenizer(out, profile, tokenizer=not finetune)
    tokenizer_dir = init_from or out.require(out.tokenizer, "02_tokenizer.ipynb")
    train_path = Path(train_file) if train_file else out.require(out.train_txt, "01_data_exploration.ipynb")
    val_path = out.require(out.val_txt, "01_data_exploration.ipynb")
    print(f"{run_name}, {profile} profile, seed {seed}; its folder: {model_dir}")
    return TrainingRun(out, profile, seed, size, requested_precision, settings, sources, run_name, model_dir,
                       tokenizer_dir, train_path, val_path)


def with_step_count(settings: dict, max_steps: int, measure_s: float = 0.0) -> dict:
    """`settings` with `max_steps` set, and what depends on it (quick profile: two evaluations, a
    checkpoint mid-way, 10% warm-up) filled in where the profile left it open (None). `measure_s`:
    what timing the step took of the time budget, so that the loop stops on what is left of it
    (`train_budget_s`)."""
    settings = dict(settings, max_steps=max_steps)
    if settings["time_budget_s"] is not None and measure_s:
        settings["train_budget_s"] = round(settings["time_budget_s"] - measure_s, 3)
    derived = {"eval_interval": max(1, max_steps // 2), "checkpoint_interval": max(1, max_steps // 2),
               "warmup_steps": max(1, max_steps // 10) if max_steps > 1 else 0}
    settings.update({k: v for k, v in derived.items() if settings[k] is None})
    return settings


def steps_for_budget(budget_s: float, step_s: float, eval_s: float, n_evals: int = 2) -> int:
    """How many optimizer steps of `step_s` seconds fit in `budget_s` after `n_evals` evaluations of
    `eval_s` seconds each. At least one."""
    return max(1, int((budget_s - n_evals * eval_s) / step_s))


# Below this many tokens an evaluation's score is mostly chance: check_settings says so (the smoke
# profile scores 1,024, the others more).
MIN_EVALUATION_TOKENS = 1000


def check_settings(s: dict) -> None:
    """Refuse impossible settings before any work starts, saying what would be valid."""
    problems = []
    if not (isinstance(s["lr"], int | float) and 0 < s["lr"] < 1):
        problems.append(f"lr={s['lr']}: the learning rate must be between 0 and 1 (typically 1e-4 to 3e-3)")
    if s["max_steps"] is None:  # filled from the time budget once the step time is measured: check the rest
        s = with_step_count(s, 10**9)
    for key in ("batch_size", "max_steps", "eval_interval", "checkpoint_interval", "patience"):
        if not (isinstance(s[key], int) and s[key] >= 1):
            problems.append(f"{key}={s[key]}: must be a whole number, at least 1")
    if not (isinstance(s["block_size"], int) and 2 <= s["block_size"] <= N_POSITIONS):
        problems.append(f"block_size={s['block_size']}: the context must be between 2 and the model's "
                        f"{N_POSITIONS} positions")
    if not 0 <= s["dropout"] < 1:
        problems.append(f"dropout={s['dropout']}: must be in [0, 1)")
    if not 0 <= s["weight_decay"] <= 5:
        problems.append(f"weight_decay={s['weight_decay']}: must be in [0, 5], e.g. 0.1")
    if not (isinstance(s["warmup_steps"], int) and 0 <= s["warmup_steps"] <= s["max_steps"]):
        problems.append(f"warmup_steps={s['warmup_steps']}: must be between 0 and max_steps ({s['max_steps']})")
    micro = s["micro_batch_size"]
    if not (isinstance(micro, int) and 1 <= micro <= s["batch_size"] and s["batch_size"] % micro == 0):
        problems.append(f"micro_batch_size={micro}: must divide batch_size ({s['batch_size']})")
    for key in ("train_eval_tokens", "val_tokens"):
        if s[key] is not None and not (isinstance(s[key], int) and s[key] >= 1):
            problems.append(f"{key}={s[key]}: must be at least 1, or None (the whole validation text's length)")
    if s["schedule"] not in SCHEDULES:
        problems.append(f"schedule={s['schedule']!r}: must be one of {', '.join(SCHEDULES)}")
    elif s["schedule"] == "plateau":
        if not (isinstance(s["decay_patience"], int) and s["decay_patience"] >= 1):
            problems.append(f"decay_patience={s['decay_patience']}: the plateau schedule needs a whole number "
                            "of evaluations, at least 1")
        if not (isinstance(s["decay_fraction"], int | float) and 0 < s["decay_fraction"] <= 1):
            problems.append(f"decay_fraction={s['decay_fraction']}: the plateau schedule needs a fraction in (0, 1]")
    if not (isinstance(s["ema_decay"], int | float) and 0 <= s["ema_decay"] < 1):
        problems.append(f"ema_decay={s['ema_decay']}: must be in [0, 1), e.g. 0.99, or 0 for no averaging")
    if s["time_budget_s"] is not None and not s["time_budget_s"] > 0:
        problems.append(f"time_budget_s={s['time_budget_s']}: must be positive, or None for no limit")
    if problems:
        raise ValueError("invalid training settings:\n  " + "\n  ".join(problems))
    few = [f"{key}={s[key]}" for key in ("val_tokens", "train_eval_tokens")
           if s[key] is not None and s[key] < MIN_EVALUATION_TOKENS]
    if few:  # allowed (a quick trial), but the model it saves must not pass for the best one unnoticed
        print(f"note: {', '.join(few)}: evaluations score fewer than {MIN_EVALUATION_TOKENS:,} tokens. The model "
              "saved is the step with the best validation score, and a score on so few tokens is mostly chance, so "
              "that 'best' step is picked by luck (and train against validation compares noise). Use at least "
              f"{MIN_EVALUATION_TOKENS:,}, or None: the whole validation text.")


def learning_rate(step: int, settings: dict, decay_start: int | None = None) -> float:
    """The learning rate for optimizer step `step` (from 1): a linear warm-up, then the schedule.

    With the plateau schedule, `decay_start` is the step at which validation stalled (None while it
    has not): from there the rate falls linearly to zero over `decay_steps(...)` steps.
    """
    peak, warmup = settings["lr"], settings["warmup_steps"]
    if step <= warmup:
        return peak * step / warmup
    if settings["schedule"] == "cosine":
        progress = (step - warmup) / max(1, settings["max_steps"] - warmup)
        return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if decay_start is None:
        return peak
    return peak * max(0.0, 1 - (step - decay_start) / decay_steps(settings, decay_start))


def decay_steps(settings: dict, decay_start: int) -> int:
    """How long the plateau schedule's decay lasts: `decay_fraction` of the steps before it."""
    return max(1, round(settings["decay_fraction"] * decay_start))


def spread_sample(ids: torch.Tensor, n_tokens: int, block_size: int, pieces: int = 8) -> torch.Tensor:
    """About `n_tokens` of `ids` in `pieces` evenly spaced pieces, for scoring the training text.

    Spread over the whole text, so that the training score is not one story's difficulty; each
    piece is a whole number of scoring windows (`block_size - 1` tokens, see metrics.py), so that
    no window spans two distant parts of the book.
    """
    if len(ids) <= n_tokens:
        return ids
    window = block_size - 1
    piece = window * max(1, round(n_tokens / pieces / window))
    count = max(1, min(pieces, round(n_tokens / piece), len(ids) // piece))
    starts = torch.linspace(0, len(ids) - piece, count).long().tolist()
    return torch.cat([ids[start : start + piece] for start in starts])


def decay_finished(step: int, settings: dict, decay_start: int | None) -> bool:
    """Whether the plateau schedule's decay, begun at `decay_start`, has reached zero by `step`."""
    return decay_start is not None and step >= decay_start + decay_steps(settings, decay_start)


def evaluation_due(step: int, settings: dict, decay_start: int | None = None) -> bool:
    """Every `eval_interval` steps, at the last step, and when the decay ends (the run stops there)."""
    return (step % settings["eval_interval"] == 0 or step == settings["max_steps"]
            or decay_finished(step, settings, decay_start))


def stop_reason(step: int, settings: dict, state: dict) -> str | None:
    """Why training stops after this evaluation, in words, or None to go on."""
    if state["evals_without_improvement"] >= settings["patience"]:
        return f"early stopping (no improvement in {settings['patience']} evaluations)"
    if decay_finished(step, settings, state["decay_start"]):
        return f"learning rate decayed to zero (decay from step {state['decay_start']})"
    return None


def out_of_time(settings: dict, elapsed_s: float) -> bool:
    """Whether the training loop has spent its budget: the time budget, less what timing the step
    took of it where the step count was measured (`with_step_count`)."""
    budget = settings.get("train_budget_s", settings["time_budget_s"])
    return budget is not None and elapsed_s > budget


class WeightAverage:
    """An exponential moving average of a model's weights (`ema_decay`), kept in fp32 beside it.

    After each optimizer step `update(model)` moves the average a little towards the weights; the
    average smooths out the noise of single steps, which a high learning rate makes large.
    `swapped_in(model)` puts the average into the model for an evaluation, and back afterwards.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.weights = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                self.weights[name].lerp_(value.float(), 1 - self.decay)

    def state_dict(self) -> dict:
        return {k: v.to("cpu", copy=True) for k, v in self.weights.items()}

    def load_state_dict(self, weights: dict) -> None:
        for name, value in weights.items():
            self.weights[name].copy_(value)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.weights)
        try:
            yield
        finally:
            model.load_state_dict(live)


def train_step(accelerator, model, optimizer, batch: torch.Tensor, micro_batch_size: int, lr: float,
               grad_clip: float, cpu_bf16: bool = False) -> float:
    """One optimizer step of notebook 03 on `batch`, in micro-batches; returns the mean training loss.

    The same as the bare step in notebook 03 (forward with labels=input_ids, backward, clip, step),
    with three additions: the batch is split into micro-batches whose gradients add up (each loss
    divided by their number) before one optimizer step; `accelerator.backward` scales the loss for
    fp16; and on a CPU with bf16 instructions the forward pass runs under bf16 autocast.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    micro_batches = batch.split(micro_batch_size)
    total = torch.zeros((), device=accelerator.device)
    for micro_batch in micro_batches:
        input_ids = micro_batch.to(accelerator.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16):
            loss = model(input_ids=input_ids, labels=input_ids).loss  # the model shifts the labels itself
        accelerator.backward(loss / len(micro_batches))
        total += loss.detach().float()
    accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total.item() / len(micro_batches)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware: AVX-512 BF16 or AMX (Intel Cooper Lake,
    Sapphire Rapids and newer; AMD Zen 4 and newer).

    oneDNN can emulate bf16 on older CPUs, but that is slower than fp32, so we ask for the
    instructions themselves: torch's own CPU feature checks, else the flags in /proc/cpuinfo.
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(check is not None for check in checks):
        return any(check() for check in checks if check is not None)
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def check_precision(requested: str) -> str:
    """`requested` in lower case, or a ValueError that lists the valid values."""
    requested = str(requested).strip().lower()
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r}: choose one of {', '.join(PRECISIONS)}")
    if requested == "fp16" and not torch.cuda.is_available():
        raise ValueError("precision='fp16' needs a CUDA GPU; on a CPU use 'bf16' (if it has bf16 instructions) "
                         "or 'fp32'")
    return requested


# "auto" on a CPU keeps fp32 unless bf16 is measured faster than this (3%): a tie is not worth the
# rounding, and two timings of the same step differ by about that much on a quiet machine.
BF16_MARGIN = 0.03


def decide_cpu_precision(fp32_step_s: float, bf16_step_s: float, margin: float = BF16_MARGIN) -> tuple[str, str]:
    """The faster of two measured training steps, and why in words: bf16 only if it beats fp32 by
    more than `margin`. E.g. ('bf16', 'bf16 (1.90x fp32, measured)') or ('fp32', 'fp32 (bf16 measured 0.77x)')."""
    speed_up = fp32_step_s / bf16_step_s
    if speed_up > 1 + margin:
        return "bf16", f"bf16 ({speed_up:.2f}x fp32, measured)"
    return "fp32", f"fp32 (bf16 measured {speed_up:.2f}x)"


def choose_precision(requested: str = "auto", measure=None) -> tuple[str, str]:
    """The training precision, 'fp32', 'bf16' or 'fp16', and the reason for it in words.

    On a GPU, 'auto' is bf16 where it has bf16 (Ampere and newer) and fp16 with loss scaling on
    older ones (a T4). On a CPU the flags cannot tell whether bf16 is faster: it is 2x faster with
    AMX and on AMD Zen 4, and slower than fp32 on some Xeons that have avx512_bf16. So 'auto' calls
    `measure()`, which returns the seconds of one training step in fp32 and in bf16 (notebook 03:
    measured once per machine, `precision_for_run`), and takes the faster (`decide_cpu_precision`).
    A CPU without bf16 instructions only emulates it (10 to 20 times slower,
    benchmarks/train_step.py), so there it is fp32 without measuring; so is a CPU with them when
    there is nothing to measure (`measure=None`). Weights, optimizer state and evaluation stay fp32
    in every case: only the training step's matrix products run in 16 bits.
    """
    requested = check_precision(requested)
    if requested != "auto":
        return requested, f"{requested} (requested)"
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        chosen = "bf16" if major >= 8 else "fp16"
        return chosen, f"{chosen} (auto: GPU compute capability {major}.{minor})"
    if not cpu_supports_bf16():
        return "fp32", "fp32 (auto: this CPU has no bf16 instructions)"
    if measure is None:
        return "fp32", "fp32 (auto: bf16 not measured)"
    return decide_cpu_precision(*measure())


def auto_precision_label() -> str:
    """What precision="auto" trains in here, for a label written before any run: the precision on a
    GPU or a CPU without bf16 instructions; on a CPU with them, 'auto' (measured by each run)."""
    if not torch.cuda.is_available() and cpu_supports_bf16():
        return "auto"
    return choose_precision()[0]


# "auto" on a CPU is measured once per machine (and batch shape), and that verdict holds for every
# size: whether bf16 beats fp32 is a property of the CPU, and the verdict was the same for every
# size measured on the three CPUs with bf16 instructions (docs/benchmarks.md: AMX 1.44-2.10x faster
# from 1M to 37M; a Xeon without AMX 0.76-1.02x; Zen 4 2.32x at 15M), although the ratio itself
# grows with the size. The first run to need it measures its own size, or this one if its own is
# bigger (15M: measured on all three; timing 100M itself cost 82 s of its 60 s budget).
PRECISION_REFERENCE_SIZE = "15M"
# Timing stops after the first alternating pair once one precision is this much faster: the
# verdict cannot change (fp32 and bf16 were 1.4-2.3x apart on CPUs where bf16 wins), and only
# close calls pay for the median of three.
CLEAR_SPEED_UP = 1.25


def untrained_model(size_name: str, vocab_size: int | None = None, device="cpu"):
    """A fresh GPT-2 of a size in the table (dropout 0.1, fused attention, seed 0), for timing:
    the random number generators are left as they were."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from .sizes import DEFAULT_VOCAB_SIZE

    shape = get_size(size_name)
    config = GPT2Config(vocab_size=vocab_size or DEFAULT_VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=shape.n_embd,
                        n_layer=shape.n_layer, n_head=shape.n_head, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                        attn_implementation="sdpa", bos_token_id=0, eos_token_id=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return GPT2LMHeadModel(config).to(device)


def pretrained_model(name_or_folder: str, dropout: float):
    """The pretrained causal language model that notebook 06 fine-tunes (03 run with `init_from`),
    with this run's dropout and PyTorch's fused attention, in training mode (`from_pretrained`
    leaves a model in evaluation mode: no dropout)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(name_or_folder, resid_pdrop=dropout, embd_pdrop=dropout,
                                                 attn_pdrop=dropout, attn_implementation="sdpa")
    return model.train()


def alternate_until_clear(step_seconds, rounds: int = 3, clear_speed_up: float | None = CLEAR_SPEED_UP
                          ) -> tuple[float, float]:
    """The median seconds of fp32 and bf16 steps, timed alternately (`step_seconds("fp32")` runs one
    step and returns its seconds), so that machine noise hits both alike: up to `rounds` pairs, fewer
    once one precision is more than `clear_speed_up` times faster than the other (None: all rounds)."""
    times = {"fp32": [], "bf16": []}
    for _ in range(rounds):
        for dtype in times:
            times[dtype].append(step_seconds(dtype))
        fp32_s, bf16_s = (sorted(t)[len(t) // 2] for t in times.values())
        if clear_speed_up and not 1 / clear_speed_up <= fp32_s / bf16_s <= clear_speed_up:
            break
    return fp32_s, bf16_s


def time_cpu_precisions(model, batch: torch.Tensor, grad_clip: float = 1.0, rounds: int = 3,
                        clear_speed_up: float | None = CLEAR_SPEED_UP) -> tuple[float, float]:
    """Seconds of one training step of `model` on `batch` in fp32 and under bf16 autocast, after a
    warm-up step each (`alternate_until_clear`: the median of up to `rounds` steps each). Timed on a
    copy, with the random number generators restored afterwards."""
    with torch.random.fork_rng():
        twin = copy.deepcopy(model).train()
        optimizer = torch.optim.AdamW(twin.parameters(), lr=0.0)  # lr 0: timing only

        def step(dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                loss = twin(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for dtype in ("fp32", "bf16"):
            step(dtype)  # warm-up: memory allocation, kernel choice
        return alternate_until_clear(lambda dtype: _seconds(lambda: step(dtype)), rounds, clear_speed_up)


def precision_timing_size(size_name: str | None) -> str:
    """The size whose steps "auto" times: `size_name`, or `PRECISION_REFERENCE_SIZE` where that is
    smaller (or where there is no size: a pretrained model, notebook 06)."""
    from .sizes import SIZES

    order = list(SIZES)
    if size_name is None or order.index(get_size(size_name).name) > order.index(PRECISION_REFERENCE_SIZE):
        return PRECISION_REFERENCE_SIZE
    return get_size(size_name).name


def measure_cpu_precisions(size_name: str, batch_shape: tuple[int, int], grad_clip: float = 1.0) -> dict:
    """Step seconds in fp32 and bf16 of a fresh model of `size_name` on a random batch of
    `batch_shape` (sequences, tokens), and what measuring them cost in seconds."""
    start = time.perf_counter()
    batch = torch.randint(0, 2048, tuple(batch_shape), generator=torch.Generator().manual_seed(0))
    fp32_s, bf16_s = time_cpu_precisions(untrained_model(size_name), batch, grad_clip)
    return {"fp32_step_s": round(fp32_s, 4), "bf16_step_s": round(bf16_s, 4),
            "measured_on": f"{size_name}, {batch_shape[0]} x {batch_shape[1]} tokens",
            "measure_s": round(time.perf_counter() - start, 2)}


def precision_for_run(requested: str, cache: Path, size_name: str | None, batch_shape: tuple[int, int],
                      grad_clip: float = 1.0) -> dict:
    """`choose_precision` for notebook 03, with the measurement (where there is one) kept in `cache`
    under `precision_cache_key(batch_shape)`: measured once on this machine, on
    `precision_timing_size(size_name)`, and reused by every size, every rerun and every resumed run,
    which so train in the same precision. Returns {"precision", "why", and the measurement where
    there is one}."""
    cache, key = Path(cache), precision_cache_key(batch_shape)
    timed = {}

    def measure():
        # Under a lock: sizes that start together would otherwise each measure, disagree on a close
        # call, and the cache would keep one verdict while a model was trained in the other (the next
        # run then found it "trained with other settings" and retrained it). The second waits for the
        # first's verdict instead (a second or two).
        with exclusive(cache):
            known = read_json(cache) if cache.exists() else {}
            if key not in known:
                known[key] = measure_cpu_precisions(precision_timing_size(size_name), batch_shape, grad_clip)
                atomic_write_json(cache, known)
        timed.update(known[key])
        return timed["fp32_step_s"], timed["bf16_step_s"]

    precision, why = choose_precision(requested, measure)
    return {"precision": precision, "why": why, **timed}


def precision_cache_key(batch_shape: tuple[int, int]) -> str:
    """Which measurements are the same: this machine (host, CPU, threads, torch) and this batch
    shape (sequences, tokens), whatever the size."""
    import socket

    from .environment import cpu_model

    return (f"{socket.gethostname()} | {cpu_model()} | {torch.get_num_threads()} threads | torch {torch.__version__}"
            f" | every size | {tuple(batch_shape)}")


def use_physical_cores() -> str:
    """Give torch one thread per physical core (hyper-threads slow matrix products down), and say so.
    An OMP_NUM_THREADS set by the user wins (./run_tests.sh sets 1: its processes share the cores)."""
    from .environment import physical_cores

    cores, chosen = physical_cores(), os.environ.get("OMP_NUM_THREADS")
    if cores and not chosen and not torch.cuda.is_available():
        torch.set_num_threads(cores)
    threads = torch.get_num_threads()
    why = f"OMP_NUM_THREADS={chosen}" if chosen else f"{cores or 'unknown'} physical cores"
    return f"{threads} thread{'s' if threads != 1 else ''} ({why})"


def accelerate_mixed_precision(precision: str) -> str:
    """What to pass as Accelerator(mixed_precision=...).

    On a GPU, Accelerate runs the forward pass in bf16 or fp16 (with loss scaling). On a CPU it is
    'no': notebook 03 wraps only the training step's forward pass in torch.autocast itself, because
    Accelerate's autocast would wrap every call of the model, evaluation included.
    """
    if precision == "fp32" or not torch.cuda.is_available():
        return "no"
    return precision


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


class _HarmlessNote(logging.Filter):
    """Drops one library note that a learner can do nothing about; every other record passes."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


# accelerate's "Removed shared tensor {'lm_head.weight'}", at every checkpoint: GPT-2's output layer
# is its token embedding (tied weights), safetensors stores the one tensor once, and loading the
# state back ties them again (the resume tests check that a resumed run continues exactly). Any
# other shared tensor is still reported.
logging.getLogger("accelerate.utils.other").addFilter(_HarmlessNote("Removed shared tensor {'lm_head.weight'}"))
# transformers' "`loss_type=None` was set in the config but it is unrecognized. Using the default
# loss: `ForCausalLMLoss`", at the first forward pass of a GPT-2 given labels: transformers (5.x)
# picks a model's loss from its class name, "GPT2LMHeadModel" holds none of the names it knows, and
# it falls back on ForCausalLMLoss, the next-token cross-entropy that is GPT-2's own loss (the one
# notebook 03 teaches, and its tests check). A loss type that is set and unrecognised is still
# reported. Installed where notebook 03 (and every user of this module) imports it.
logging.getLogger("transformers.modeling_utils").addFilter(
    _HarmlessNote("`loss_type=None` was set in the config but it is unrecognized"))


def save_checkpoint(accelerator, folder: Path, step: int, trainer_state: dict,
                    weights: dict[str, dict | None] | None = None, keep: int = 2) -> Path:
    """Save everything needed to resume at `step`, atomically, then delete all but the `keep` newest.

    `weights` holds named sets of weights besides the model's own (the best so far, the running
    average), each written as `<name>.safetensors` inside the same temporary folder, so a kill at any
    moment leaves either a complete checkpoint or none; the one before is kept in case the newest
    cannot be read back (a disk error, a file damaged later).
    """
    path = Path(folder) / f"step_{step:06d}"
    with atomic_directory(path) as tmp:
        accelerator.save_state(str(tmp))  # model, optimizer, loss scaler, RNG states
        for name, tensors in (weights or {}).items():
            if tensors is not None:  # no best weights before the first evaluation
                safetensors.torch.save_file(tensors, tmp / f"{name}.safetensors")
        if os.environ.get(KILL_FOR_TEST_ENV) == str(step):
            os._exit(137)  # the tests' stand-in for a kill -9 in the middle of writing a checkpoint
        atomic_write_json(tmp / "trainer_state.json", trainer_state)
    for old in completed_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def completed_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (half-written ones are hidden temporary folders, never matched)."""
    return sorted(p for p in Path(folder).glob("step_*") if (p / "trainer_state.json").exists())


def load_latest_checkpoint(accelerator, folder: Path, on_note=print) -> tuple[Path, dict, dict[str, dict]] | None:
    """Load the newest checkpoint that can be read: (its path, its trainer state, its named weights).

    A checkpoint that fails to load is reported and the one before it is tried. None if there is
    no checkpoint; an error that says what to do if none of them loads.
    """
    checkpoints = completed_checkpoints(folder)
    for path in reversed(checkpoints):
        try:
            accelerator.load_state(str(path))
            weights = {f.stem: safetensors.torch.load_file(f) for f in sorted(path.glob("*.safetensors"))
                       if f.stem not in ("model", "optimizer")}
            return path, read_json(path / "trainer_state.json"), weights
        except Exception as err:  # any damage to the files: try the checkpoint before
            on_note(f"could not load the checkpoint {path.name} ({type(err).__name__}: {err}); "
                    "trying the one before it")
    if checkpoints:
        raise RuntimeError(f"none of the checkpoints in {folder} could be loaded (see above). Delete that folder "
                           "to start this size again, or run with force=True.")
    return None


def run_signature(model_size: str | None, profile: str, seed: int, requested_settings: dict, precision: str,
                  vocab_size: int, train_path: Path, tokenizer_file: Path | None,
                  init_from: str | None = None, train_file: str | None = None) -> dict:
    """Everything a trained model depends on; a run with another signature is another model.

    Another training text or tokenizer (notebook 01 or 02 rerun) changes the hashes: retrain.
    `tokenizer_file` is None when fine-tuning (the pretrained model brings its own).
    """
    from .io import file_sha256

    signature = {"model_size": model_size, "profile": profile, "seed": seed,
                 "requested_settings": requested_settings, "precision": precision, "vocab_size": vocab_size,
                 "train_sha256": file_sha256(train_path),
                 "tokenizer_sha256": tokenizer_file and file_sha256(tokenizer_file)}
    if init_from or train_file:  # notebooks 06 and 07: a pretrained start or other training text
        signature.update(init_from=init_from, train_file=train_file and Path(train_path).name)
    return signature


def new_state(micro_batch_size: int) -> dict:
    """The bookkeeping of a run before its first step (a checkpoint saves and restores it)."""
    return {"step": 0, "history": [], "best_val_loss": float("inf"), "best_step": 0,
            "evals_without_improvement": 0, "train_time_s": 0.0, "step_time_s": 0.0, "tokens_seen": 0,
            "micro_batch_size": micro_batch_size, "decay_start": None, "stopped_because": None}


def start_or_resume(accelerator, model_dir: Path, run_name: str, signature: dict, settings: dict,
                    weight_average=None, force: bool = False) -> tuple[dict, dict | None, bool]:
    """Where notebook 03's run starts: (state, best weights so far, finished before).

    - A model in `model_dir` trained with this `signature` that loads: finished before, nothing to do.
    - Else the newest readable checkpoint in `model_dir`/training, if made with this signature:
      its state, best weights and moving average are loaded back (another signature: an error).
    - Else a new state. A linked folder (a Kaggle run attached as input) is replaced first.
    """
    from .paths import replace_link
    from .runs import finished_before

    state_dir = Path(model_dir) / "training"
    finished, why = finished_before(model_dir, signature, force)
    if not finished:  # Kaggle: never write into an attached run's folder
        replace_link(model_dir, f"retraining {run_name}, since {why}")
    state, best_weights = new_state(settings["micro_batch_size"]), None
    resumed = None if finished or force else load_latest_checkpoint(accelerator, state_dir)
    if finished:
        print(f"{run_name} already finished with these settings, and loads ({Path(model_dir) / 'metrics.json'}): "
              "skipped; set force=True to retrain.")
    elif resumed is not None:
        checkpoint, saved, saved_weights = resumed
        if saved["signature"] != signature:
            raise RuntimeError(f"{checkpoint} was made with other settings; delete {state_dir} or run with force=True")
        state, best_weights = saved["state"], saved_weights.get("best_model")
        if weight_average is not None:
            weight_average.load_state_dict(saved_weights["average_model"])
        print(f"resuming from {checkpoint.name} (step {state['step']} of {settings['max_steps']})")
    else:
        print(f"starting from scratch ({why})")
    clear_stale_temporaries(state_dir)
    return state, best_weights, finished


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


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


# A step slower than this is timed once, its warm-up counted: 100M on one core of a 2-core CPU took
# 11.5 s a step, and a warm-up step before the timed one cost the quick profile's minute that much.
SLOW_STEP_S = 5.0


def time_step_and_evaluation(model, batch: torch.Tensor, autocast_dtype: torch.dtype | None,
                             grad_clip: float = 1.0) -> tuple[float, float]:
    """Seconds for one training step on `batch` (forward and backward under `autocast_dtype`, clip,
    AdamW) and for one evaluation forward pass of the same shape (fp32, no gradients).

    Timed on a copy of `model`, so the run itself is untouched; the copy's first step is a warm-up
    (memory allocation, kernel choice) and is not counted unless it took more than SLOW_STEP_S, and
    small models take the median of up to five steps (as many as fit in two seconds). The evaluation
    pass is timed on a quarter of the rows and scaled up (a forward pass costs in proportion to its
    rows: on a CPU, a full micro-batch of 100M took 5.6 s of a quick run's minute). The random
    number generators are restored afterwards, so a run with a measured budget draws the same
    dropout masks as any other.
    """
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        twin = copy.deepcopy(model).train()
        optimizer = torch.optim.AdamW(twin.parameters(), lr=0.0)  # lr 0: timing only
        x = batch.to(device)

        def step():
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                loss = twin(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        warm_up = _seconds(step)  # memory allocation, kernel choice: not counted...
        if warm_up > SLOW_STEP_S:  # ...unless the step is slow: one-off costs are small beside it,
            times = [warm_up]  # and a second step would cost the budget as much again
        else:
            times = [_seconds(step)]
        while len(times) < 5 and sum(times) < 2.0:  # a few more steps where they are quick: one is noisy
            times.append(_seconds(step))
        step_s = sorted(times)[len(times) // 2]  # the median
        twin.eval()
        rows = max(1, len(x) // 4)
        with torch.no_grad():
            eval_s = _seconds(lambda: twin(input_ids=x[:rows]).logits.float()) * len(x) / rows
    return step_s, eval_s


def measure_step_budget(model, batch: torch.Tensor, settings: dict, eval_text_tokens: list[int],
                        autocast_dtype: torch.dtype | None, saved: Path, force: bool = False) -> dict:
    """The quick profile's step count: how many steps of this size fit in settings["time_budget_s"].

    Times one step on `batch` (micro-batch by micro-batch, as the run does) and one evaluation batch,
    and counts the evaluation batches that scoring `eval_text_tokens` needs. The timing itself is
    paid from the budget (`measure_s`: for 100M on a 2-core CPU it took a third of the minute), so
    that the budget is what measuring, training and evaluating cost together. The answer is saved to
    `saved`, so that an interrupted run resumes with the step count it measured first (unless `force`).
    """
    if saved.exists() and not force:
        return {"measure_s": 0.0, **read_json(saved)}  # saved before the timing was recorded: none known
    micro, block = settings["micro_batch_size"], settings["block_size"]
    started = time.perf_counter()
    step_s, eval_batch_s = time_step_and_evaluation(model, batch[:micro], autocast_dtype, settings["grad_clip"])
    measure_s = round(time.perf_counter() - started, 3)
    step_s = round(step_s * (settings["batch_size"] // micro), 4)  # rounded first, so the record adds up
    eval_s = round(eval_batch_s * sum(math.ceil(n / (block - 1) / micro) for n in eval_text_tokens), 3)
    budget = {"step_s": step_s, "eval_s": eval_s, "budget_s": settings["time_budget_s"], "measure_s": measure_s,
              "max_steps": steps_for_budget(settings["time_budget_s"] - measure_s, step_s, eval_s)}
    atomic_write_json(saved, budget)
    return budget


STARTUP_S = 20  # a run of notebook 03: starting its kernel, loading the data and the tokenizer


def estimate_seconds(model_size: str, profile: str, timed_steps: int = 2) -> tuple[float, str]:
    """How long notebook 03 will take to train `model_size` in `profile` on this machine, and how
    that was worked out (printed before training starts, so that nobody waits blind).

    The quick profile trains for its time budget by design. Otherwise a fresh model of this size
    takes `timed_steps` training steps at the profile's batch (after one to warm up), and the time
    per step is multiplied by the step count, plus a sixth for evaluations; in the full profile
    that count (max_steps) is a ceiling that early stopping usually cuts short. Each run also
    spends about `STARTUP_S` starting its kernel and loading the data.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    from .sizes import DEFAULT_VOCAB_SIZE, N_POSITIONS, get_size

    settings = training_settings(model_size, profile)
    if settings["max_steps"] is None:
        budget = settings["time_budget_s"]
        return budget * 1.25 + STARTUP_S, f"the {profile} profile's time budget ({budget} s), and evaluations"
    shape = get_size(model_size)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = GPT2LMHeadModel(GPT2Config(vocab_size=DEFAULT_VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=shape.n_embd,
                                       n_layer=shape.n_layer, n_head=shape.n_head, bos_token_id=0,
                                       eos_token_id=0)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, DEFAULT_VOCAB_SIZE, (settings["batch_size"], settings["block_size"]), device=device)
    precision, _ = choose_precision()  # on a CPU fp32: bf16 is used only where measured faster
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    times = []
    for _ in range(timed_steps + 1):
        start = time.perf_counter()
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_s = min(times[1:])
    steps = settings["max_steps"]
    how = f"{step_s:.2f} s a step measured here, {steps} steps{' at most' if profile == 'full' else ''}"
    return step_s * steps * 7 / 6 + STARTUP_S, how


# torch.compile made a CPU training step 1.19-1.22x faster after 34-41 s of compiling (issue 16's
# measurement, benchmarks/train_step.py --compile). The quick profile's minute cannot pay that back
# (a 1.2x faster step saves at most 10 s of 60), and the smoke profile tests plumbing.
def compile_choice(profile: str, device: str) -> dict:
    """Whether notebook 03 compiles the model, and why, in words (recorded in metrics.json)."""
    if profile == "smoke":
        return {"compiled": False, "why": "smoke profile: never compiled"}
    if profile == "quick":
        return {"compiled": False, "why": "quick profile: ~35 s of compiling cannot pay back in a 60 s budget "
                "(steps 1.2x faster save at most 10 s)"}
    return {"compiled": False, "why": f"not compiled: notebook 03 trains eagerly on {device} (torch.compile "
            "is measured by benchmarks/train_step.py --compile, not yet used by the full profile)"}
