"""Does bf16 training hurt quality? Train the same runs in fp32 and bf16 and compare validation bits per byte.

    JUNGLE_DATA_DIR=../shared/data .venv/bin/python scripts/precision_check.py --out OUT quick
    JUNGLE_DATA_DIR=../shared/data .venv/bin/python scripts/precision_check.py --out OUT full

OUT must hold data/ and tokenizer/ from notebooks 01 and 02. Every run is notebook 03, executed with
papermill (junglegpt.runs.run_training), into OUT/models/precision/<name>:

- quick: every size in the quick profile at a fixed step count (the counts the quick profile used
  before it measured them, so that both precisions take the same steps), in fp32 and in bf16, and
  in fp32 with a second seed to show how far apart two runs differing only in chance land;
- full: 1M in the full profile (to early stopping), in fp32 and bf16, with two seeds each.

Each run's metrics.json is copied to results/precision-cpu/ and the table printed. Runs that
finished before are skipped by notebook 03.
"""

from __future__ import annotations

import argparse
import shutil

from junglegpt.paths import REPO_ROOT, OutputDirs
from junglegpt.runs import run_training

QUICK_STEPS = {"1M": 104, "3M": 52, "7M": 30, "15M": 16, "22M": 10, "37M": 6, "59M": 4, "100M": 2}
SEEDS = (1894, 1895)


def runs(which: str) -> list[dict]:
    if which == "full":
        return [dict(model_size="1M", profile="full", precision=p, seed=s) for s in SEEDS for p in ("fp32", "bf16")]
    variants = (("fp32", SEEDS[0]), ("bf16", SEEDS[0]), ("fp32", SEEDS[1]))
    return [dict(model_size=size, profile="quick", precision=p, seed=s, max_steps=steps, time_budget_s=600)
            for size, steps in QUICK_STEPS.items() for p, s in variants]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", choices=("quick", "full"))
    parser.add_argument("--out", required=True, help="a folder with data/ and tokenizer/ from notebooks 01 and 02")
    args = parser.parse_args()
    out = OutputDirs(args.out)
    keep = REPO_ROOT / "results" / "precision-cpu"
    keep.mkdir(parents=True, exist_ok=True)
    print("| size | profile | precision | seed | steps | best val bpb |")
    print("|---|---|---|---|---|---|")
    for run in runs(args.which):
        name = f"{run['profile']}_{run['model_size']}-{run['precision']}-s{run['seed']}"
        metrics = run_training(out, f"precision/{name}", **run)
        shutil.copy(out.model(f"precision/{name}") / "metrics.json", keep / f"{name}.json")
        print(f"| {run['model_size']} | {run['profile']} | {run['precision']} | {run['seed']} | "
              f"{metrics['steps_done']} | {metrics['best_val_bpb']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
