"""Dynamic evaluation's update rule: is notebook 04's plain SGD step what holds it back?

    .venv/bin/python benchmarks/dynamic_rules.py --out OUT [--sizes 1M,3M] [--rules sgd,adam]

Notebook 04 scores each chunk, then takes one SGD step on it, at a learning rate chosen from a
fixed grid on text that is not reported. This benchmark runs the same protocol with other rules:

- sgd: notebook 04's step, with the grid one notch wider (0.3) to see whether its top limits it;
- sgd-chunk64: the same, learning every 64 tokens instead of every 128 (twice the steps);
- sgd-decay: SGD, then a pull back toward the trained weights (Krause et al., 2018);
- adam: Adam, a fresh one per text;
- rms-decay: Krause et al. (2019), the step divided by each weight's RMS gradient on the
  training text, with the pull back (`junglegpt.dynamic.RMSDecay`).

Two more were added after those five had run, because of what they showed (the pull back cost the
long held-out book dearly, and learning every 64 tokens helped it):

- rms: Krause's scaled step without the pull back;
- sgd-chunk32: SGD every 32 tokens.

Every rule's learning rate is chosen the way notebook 04 chooses its own: on the last tenth of the
training text for validation, and on validation for the held-out book. Nothing reported is looked
at before the rate is fixed, and each grid was fixed before its rule ran. Whole texts are scored,
as in the full profile. Each finished (size, rule) is written at once to
benchmarks/results/dynamic_rules_<run>.json, and a rerun skips what is there.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from junglegpt import data as jb  # noqa: E402
from junglegpt import dynamic  # noqa: E402
from junglegpt.environment import describe_hardware  # noqa: E402
from junglegpt.io import atomic_write_json, read_json  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402
from junglegpt.sizes import parse_sizes  # noqa: E402

DECAY = 0.01  # the pull back toward the trained weights, per step (fixed, not tuned)


def sgd_with_decay(params, lr):
    """RMSDecay with every scale 1: a plain SGD step, then the pull back."""
    params = list(params)
    return dynamic.RMSDecay(params, lr, [torch.ones_like(p) for p in params], DECAY)


def rms_scaled(decay: float):
    """RMSDecay, scaled by the model's RMS gradients on the training text."""
    def make(model, train_ids: torch.Tensor, eos: int):
        return functools.partial(dynamic.RMSDecay, rms=dynamic.gradient_rms(model, train_ids, eos), decay=decay)
    return make


# name: (the optimizer for a model, given the training text; learning-rate grid; chunk length)
RULES = {
    "sgd": (lambda *_: torch.optim.SGD, (*dynamic.LR_GRID, 0.3), dynamic.CHUNK),
    "sgd-chunk64": (lambda *_: torch.optim.SGD, (0.01, 0.03, 0.1, 0.3), 64),
    "sgd-decay": (lambda *_: sgd_with_decay, (0.03, 0.1, 0.3), dynamic.CHUNK),
    "adam": (lambda *_: torch.optim.Adam, (1e-4, 3e-4, 1e-3), dynamic.CHUNK),
    "rms-decay": (rms_scaled(DECAY), (3e-5, 1e-4, 3e-4, 1e-3), dynamic.CHUNK),
    # Added after the five above had run (docs/results.md says what they showed):
    "rms": (rms_scaled(0.0), (1e-4, 3e-4, 1e-3), dynamic.CHUNK),
    "sgd-chunk32": (lambda *_: torch.optim.SGD, (0.01, 0.03, 0.1, 0.3), 32),
}


def bench(model, rule: str, texts: dict[str, torch.Tensor], eos: int, n_bytes) -> dict:
    """One rule on one model: its rate chosen on each tuning text, then the reported text scored."""
    make_optimizer, grid, chunk = RULES[rule]
    optimizer = make_optimizer(model, texts["train"], eos)
    context = dynamic.CHUNK + dynamic.CONTEXT - chunk  # the same 256 positions per window
    row = {"rule": rule, "chunk": chunk, "grid": list(grid)}
    started = time.perf_counter()
    for reported, tuning in (("val", "last_tenth"), ("heldout", "val")):
        tune, ids = texts[tuning], texts[reported]
        lr, tune_scores = dynamic.choose_lr(model, tune, n_bytes(tune), eos, grid, chunk=chunk, context=context,
                                            optimizer=optimizer)
        score = dynamic.dynamic_text_loss(model, ids, n_bytes(ids), eos, lr, chunk, context, optimizer=optimizer)
        row[reported] = {"tuned_on": tuning, "lr": lr, "tuning_bpb": {str(k): v for k, v in tune_scores.items()},
                         "bpb": score.bits_per_byte}
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="a run's output folder, with its models and data")
    parser.add_argument("--sizes", default="all", help="the trained sizes to use (default: all in OUT/models)")
    parser.add_argument("--rules", default=",".join(RULES), help=f"some of {', '.join(RULES)}")
    parser.add_argument("--name", default=None, help="the run's name in the result file (default: OUT's name)")
    args = parser.parse_args()
    out = OutputDirs(args.out)
    rules = [r.strip() for r in args.rules.split(",")]
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        parser.error(f"unknown rule {', '.join(unknown)}: choose from {', '.join(RULES)}")
    sizes = [s for s in parse_sizes(args.sizes) if (out.model(s) / "config.json").exists()]
    if not sizes:
        parser.error(f"no trained model of {args.sizes} in {out.models}: train them first (./run_all.sh)")

    tokenizer = AutoTokenizer.from_pretrained(out.tokenizer)
    raw = {"train": out.train_txt.read_text(encoding="utf-8"), "val": out.val_txt.read_text(encoding="utf-8"),
           "heldout": jb.load_heldout(out.raw)}
    texts = {k: torch.tensor(tokenizer.encode(t, verbose=False)) for k, t in raw.items()}
    texts["last_tenth"] = texts["train"][-len(texts["train"]) // 10 :]

    def n_bytes(ids: torch.Tensor) -> int:
        return len(tokenizer.decode(ids).encode("utf-8"))

    path = ROOT / "benchmarks" / "results" / f"dynamic_rules_{args.name or Path(args.out).resolve().name}.json"
    result = read_json(path) if path.exists() else {}
    done = {(r["size"], r["rule"]) for r in result.get("rows", [])}
    result.update({"hardware": describe_hardware(), "decay": DECAY, "tokens": {k: len(v) for k, v in texts.items()}})
    result.setdefault("rows", [])
    for size in sizes:
        model = AutoModelForCausalLM.from_pretrained(out.model(size)).eval()
        for rule in rules:
            if (size, rule) in done:
                continue
            row = {"size": size, **bench(model, rule, texts, tokenizer.eos_token_id, n_bytes),
                   "measured": time.strftime("%Y-%m-%d")}
            print(f"{size} {rule:>12}: val {row['val']['bpb']:.4f} (lr {row['val']['lr']:g}), held-out "
                  f"{row['heldout']['bpb']:.4f} (lr {row['heldout']['lr']:g}), {row['seconds']:.0f} s", flush=True)
            result["rows"].append(row)
            atomic_write_json(path, result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
