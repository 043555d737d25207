"""Side-by-side training runs that choose the full profile's recipe: one change at a time, measured.

    .venv/bin/python scripts/ablation.py --out ablation-out                  # 1M, 3M, 7M; every variant
    .venv/bin/python scripts/ablation.py --out ablation-out --jobs 12        # on a big GPU: many at once
    .venv/bin/python scripts/ablation.py --out ablation-out --table          # print the table again

Every run is notebook 03 itself, run with papermill in the `full` profile with the parameters of
one variant below, into OUT/<variant>/. Each variant changes one thing from the base recipe (the
plateau schedule), except `old`, the recipe before this study. The vocabulary variants train
their own tokenizer with notebook 02 first. Every variant uses the same split (notebook 01, run
once into OUT/base/) and the same seed.

Validation bits per byte selects; the held-out Second Jungle Book is never looked at here.
A change is kept when it lowers the mean validation bits per byte over the sizes by more than
KEEP_THRESHOLD against the base (two seeds of one recipe differ by about 0.008 on one size; the mean
over three sizes halves that); among variants that change the same setting, the best one wins.
Results: OUT/ablation.json, and the markdown table printed at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt.io import atomic_write_json, read_json  # noqa: E402
from junglegpt.paths import OutputDirs  # noqa: E402
from junglegpt.run_all import Job, run_job  # noqa: E402
from junglegpt.sizes import parse_sizes  # noqa: E402

# Every setting the study varies is written out, so that a variant means the same whatever the
# package's defaults are now (they were set from this study's results).
BASE = {"schedule": "plateau", "decay_patience": 3, "decay_fraction": 0.3, "ema_decay": 0.0, "weight_decay": 0.1}
OLD = {**BASE, "schedule": "cosine"}
KEEP_THRESHOLD = 0.005  # bits per byte

# name: (what it changes, notebook 03 parameters, notebook 02 parameters or None for the base tokenizer)
VARIANTS = {
    # round 1: one change at a time against the base
    "old": ("cosine over max_steps=3000 (the recipe before this study)", OLD, None),
    "base": ("plateau schedule: decay once validation stalls", BASE, None),
    "ema": ("+ moving average of the weights (0.99)", {**BASE, "ema_decay": 0.99}, None),
    "dropout0.2": ("+ dropout 0.2", {**BASE, "dropout": 0.2}, None),
    "dropout0.3": ("+ dropout 0.3", {**BASE, "dropout": 0.3}, None),
    "wd0.5": ("+ weight decay 0.5 (from 0.1)", {**BASE, "weight_decay": 0.5}, None),
    "block128": ("+ context 128, batch 64 (same tokens per step)", {**BASE, "block_size": 128, "batch_size": 64},
                 None),
    "batch16": ("+ batch 16 (half the tokens per step)", {**BASE, "batch_size": 16}, None),
    "vocab1024": ("+ vocabulary 1,024", BASE, {"vocab_size": 1024}),
    "vocab4096": ("+ vocabulary 4,096", BASE, {"vocab_size": 4096}),
    # round 2: the changes round 1 kept, together (the package's full-profile default since), each
    # pushed further, and a cosine with a short horizon instead of the plateau schedule, which made
    # no difference in round 1
    "recipe": ("round 2: + moving average 0.99 + weight decay 0.5 (the chosen recipe)",
               {**BASE, "ema_decay": 0.99, "weight_decay": 0.5}, None),
    "recipe_ema0.998": ("round 2: the chosen recipe with a moving average of 0.998",
                        {**BASE, "ema_decay": 0.998, "weight_decay": 0.5}, None),
    "recipe_wd1.0": ("round 2: the chosen recipe with weight decay 1.0",
                     {**BASE, "ema_decay": 0.99, "weight_decay": 1.0}, None),
    "recipe_cosine400": ("round 2: the chosen recipe with a cosine over max_steps=400",
                         {**OLD, "max_steps": 400, "ema_decay": 0.99, "weight_decay": 0.5}, None),
}
# Variants that set the same thing compete; the best of a group is the group's candidate.
GROUPS = {"ema": ["ema"], "dropout": ["dropout0.2", "dropout0.3"], "weight decay": ["wd0.5"],
          "context and batch": ["block128", "batch16"], "vocabulary": ["vocab1024", "vocab4096"]}


def prepare(out: Path, variants: list[str], profile: str) -> None:
    """Notebook 01 into OUT/base (once); per variant, the base split and a tokenizer (its own if it has one)."""
    base = OutputDirs(out / "base")
    jobs = []
    if not base.train_txt.exists():
        jobs.append(Job("01_data_exploration", {"out_dir": str(base.root), "profile": profile},
                        base.executed / "01_data_exploration.ipynb", "01 (base)"))
    if not (base.tokenizer / "tokenizer.json").exists():
        jobs.append(Job("02_tokenizer", {"out_dir": str(base.root), "profile": profile},
                        base.executed / "02_tokenizer.ipynb", "02 (base)"))
    for job in jobs:
        run_or_fail(job)
    for name in variants:
        dirs = OutputDirs(out / name)
        if dirs.root == base.root:
            continue
        dirs.root.mkdir(parents=True, exist_ok=True)
        if not dirs.data.exists():
            dirs.data.symlink_to(base.data.resolve(), target_is_directory=True)
        tokenizer_params = VARIANTS[name][2]
        if tokenizer_params is None:
            if not dirs.tokenizer.exists():
                dirs.tokenizer.symlink_to(base.tokenizer.resolve(), target_is_directory=True)
        elif not (dirs.tokenizer / "tokenizer.json").exists():
            run_or_fail(Job("02_tokenizer", {"out_dir": str(dirs.root), "profile": profile, **tokenizer_params},
                            dirs.executed / "02_tokenizer.ipynb", f"02 ({name})"))


def run_or_fail(job: Job) -> None:
    print(f"{job.label} ...", flush=True)
    ok, seconds, tail = run_job(job)
    if not ok:
        raise SystemExit(f"{job.label} failed after {seconds:.0f} s:\n{tail}")


def training_jobs(out: Path, variants: list[str], sizes: list[str], profile: str, seed: int) -> list[Job]:
    jobs = []
    for name in variants:
        dirs = OutputDirs(out / name)
        for size in sizes:
            if (dirs.model(size) / "metrics.json").exists():
                continue  # finished earlier: a rerun only adds what is missing
            params = {"out_dir": str(dirs.root), "profile": profile, "model_size": size, "seed": seed,
                      **VARIANTS[name][1]}
            jobs.append(Job("03_train", params, dirs.executed / f"03_train_{size}.ipynb", f"{name} {size}"))
    return jobs


def collect(out: Path, variants: list[str], sizes: list[str]) -> dict:
    rows = {}
    for name in variants:
        runs = {}
        for size in sizes:
            path = OutputDirs(out / name).model(size) / "metrics.json"
            if path.exists():
                m = read_json(path)
                runs[size] = {"val_bpb": m["best_val_bpb"], "best_step": m["best_step"], "steps": m["steps_done"],
                              "epochs": m["epochs_done"], "train_time_s": m["train_time_s"],
                              "stopped_because": m["stopped_because"], "label": m["label"],
                              "hardware": m["hardware"]}
        complete = len(runs) == len(sizes)
        rows[name] = {"change": VARIANTS[name][0], "notebook_03": VARIANTS[name][1],
                      "notebook_02": VARIANTS[name][2], "runs": runs,
                      "mean_val_bpb": statistics.mean(r["val_bpb"] for r in runs.values()) if complete else None}
    return rows


def choose(rows: dict) -> dict:
    """The rule in the module's docstring: per group, the best variant, kept if it beats the base by enough."""
    base = rows["base"]["mean_val_bpb"] if "base" in rows else None
    decisions = {}
    for group, names in GROUPS.items():
        measured = [n for n in names if n in rows and rows[n]["mean_val_bpb"] is not None]
        if base is None or not measured:
            continue
        best = min(measured, key=lambda n: rows[n]["mean_val_bpb"])
        gain = base - rows[best]["mean_val_bpb"]
        decisions[group] = {"best_variant": best, "gain_bpb": round(gain, 4), "keep": gain > KEEP_THRESHOLD}
    return decisions


def table(rows: dict, sizes: list[str]) -> str:
    lines = ["| change | " + " | ".join(sizes) + " | mean |", "|---|" + "---|" * (len(sizes) + 1)]
    for row in rows.values():
        cells = [f"{row['runs'][s]['val_bpb']:.3f}" if s in row["runs"] else "–" for s in sizes]
        mean = f"{row['mean_val_bpb']:.3f}" if row["mean_val_bpb"] is not None else "–"
        lines.append(f"| {row['change']} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="a folder for every variant's outputs")
    parser.add_argument("--sizes", default="1M,3M,7M")
    parser.add_argument("--variants", default="all", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=1, help="training runs at once (one per core on a CPU is "
                        "slower than one at a time; a big GPU takes a dozen)")
    parser.add_argument("--seed", type=int, default=1894)
    parser.add_argument("--profile", default="full", help="full (the study); smoke tries this script in seconds")
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    args = parser.parse_args()
    out = Path(args.out).expanduser().resolve()
    sizes = parse_sizes(args.sizes)
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not args.table:
        prepare(out, variants, args.profile)
        jobs = training_jobs(out, variants, sizes, args.profile, args.seed)
        print(f"{len(jobs)} training runs, {args.jobs} at a time", flush=True)
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_job, job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                ok, seconds, tail = future.result()
                print(f"  {futures[future].label:<16} {'ok' if ok else 'FAILED'} in {seconds:.0f} s"
                      + ("" if ok else f"\n{tail}"), flush=True)
    rows = collect(out, variants, sizes)
    result = {"profile": args.profile, "sizes": sizes, "seed": args.seed, "base": BASE,
              "keep_threshold_bpb": KEEP_THRESHOLD, "variants": rows, "decisions": choose(rows)}
    atomic_write_json(out / "ablation.json", result)
    print(table(rows, sizes))
    for group, decision in result["decisions"].items():
        verdict = "keep" if decision["keep"] else "leave out"
        print(f"{group}: best {decision['best_variant']}, {decision['gain_bpb']:+.4f} bpb against the base: {verdict}")


if __name__ == "__main__":
    main()
