"""Redraw notebook 04's figures for a committed run from its files, without its models.

    .venv/bin/python scripts/redraw_figures.py results/full-gpu --data OUT/data \
        --throughput benchmarks/results/train_step_cuda.json

Reads RUN/results.json and RUN/metrics/<size>.json and writes RUN/figures/04_*.png with
`junglegpt.figures`, the functions notebook 04 draws with. `--data` is a folder holding the run's
`train.txt` (checked against the sha256 the run recorded) and the held-out book, for the copying
figure's yardstick; `--throughput` takes tokens per second from a benchmark file instead of the
run's own logs (use it when the run trained several sizes at once, which slows each).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from junglegpt import data as jb  # noqa: E402
from junglegpt import figures, textstats  # noqa: E402
from junglegpt.figures import save_figure, setup_style  # noqa: E402
from junglegpt.io import atomic_write_json, file_sha256, read_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a folder with results.json and metrics/")
    parser.add_argument("--data", type=Path, required=True, help="the run's data/ folder (train.txt, raw/)")
    parser.add_argument("--throughput", type=Path, help="a benchmarks/results/train_step_*.json file")
    args = parser.parse_args()
    results = read_json(args.run / "results.json")
    metrics = {row["size"]: read_json(args.run / "metrics" / f"{row['size']}.json") for row in results["sizes"]}
    train_text = (args.data / "train.txt").read_text(encoding="utf-8")
    for size, m in metrics.items():  # runs before 2026-11-26 recorded no hash: their split is 01's, unchanged since
        if m.get("train_sha256", file_sha256(args.data / "train.txt")) != file_sha256(args.data / "train.txt"):
            raise SystemExit(f"{args.data / 'train.txt'} is not the training text {size} was trained on")
    rows = [{**row, "train_tokens": metrics[row["size"]]["train_tokens"],
             "tokens_per_step": metrics[row["size"]]["tokens_per_step"]} for row in results["sizes"]]
    source = f"logged by the run: {results['runs']}"
    if args.throughput:
        bench = read_json(args.throughput)
        speed = {r["size"]: r[f"notebook_{r['notebook_precision']}_tokens_per_s"] for r in bench["rows"]}
        rows = [{**row, "tokens_per_s": speed[row["size"]]} for row in rows]
        source = f"{bench['hardware'].split(' (')[0]}, one size alone: {args.throughput.name}"

    if "heldout_copy_chars" not in results:  # runs before this figure existed: compute the yardstick once
        heldout = jb.clean_text(jb.read_text(jb.find_text(jb.SECOND_JUNGLE_BOOK, raw_dir=args.data / "raw")))
        heldout = heldout[: results["heldout_chars"]]  # the part notebook 04 scored
        length = round(sum(len(s["text"]) - len(s["prompt"]) for s in results["samples"]) / len(results["samples"]))
        results["heldout_copy_chars"] = textstats.chance_copy_chars(heldout, train_text, length)
        results["heldout_copy_passage_chars"] = length
        atomic_write_json(args.run / "results.json", results)

    setup_style()
    folder, label = args.run / "figures", results["runs"]
    histories = {size: m["history"] for size, m in metrics.items()}
    drawn = {
        "04_bpb_vs_size": figures.bpb_vs_size(rows, results["baselines"], results["profile"]),
        "04_train_vs_val": figures.train_vs_val(histories, results["runs"]),
        "04_cost_vs_size": figures.cost_vs_size(rows, source),
        "04_copying": figures.copying_vs_size(rows, results["heldout_copy_chars"]),
    }
    for name, fig in drawn.items():
        print(save_figure(fig, folder, name, label=label))
    print(json.dumps({"heldout_copy_chars": results["heldout_copy_chars"]}))


if __name__ == "__main__":
    main()
