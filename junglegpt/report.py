"""Copy a run's small result files into results/<name>/ and print its tables as Markdown for the README.

    python -m junglegpt.report --out . --name quick-cpu

Copied: results.json, each size's metrics.json, the run summary, the figures, and the executed
notebooks with their text and table outputs (embedded images and widget state removed: the
figures are beside them, and the JSON stays small). Never checkpoints or the book texts.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from .io import atomic_write_text, read_json
from .paths import REPO_ROOT, OutputDirs
from .sizes import SIZES


def collect(out: OutputDirs, name: str) -> Path:
    dest = REPO_ROOT / "results" / name
    (dest / "metrics").mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        metrics = out.model(size) / "metrics.json"
        if metrics.exists():
            shutil.copy(metrics, dest / "metrics" / f"{size}.json")
    for experiment in ("finetuned", "more-data"):  # notebooks 06 and 07
        for metrics in sorted(out.models.glob(f"{experiment}/*/metrics.json")):
            shutil.copy(metrics, dest / "metrics" / f"{experiment}-{metrics.parent.name}.json")
    for path in (out.results_json, out.executed / "run_summary.json", out.root / "generations.json"):
        if path.exists():
            shutil.copy(path, dest / path.name)
    if out.figures.is_dir():  # the images the slimmed notebooks lose
        shutil.copytree(out.figures, dest / "figures", dirs_exist_ok=True)
    (dest / "executed").mkdir(exist_ok=True)
    for notebook in sorted(out.executed.glob("*.ipynb")):
        atomic_write_text(dest / "executed" / notebook.name, slimmed(notebook.read_text(encoding="utf-8")))
    return dest


def slimmed(notebook_json: str) -> str:
    """An executed notebook without its embedded images and widget state (what makes it megabytes)."""
    nb = json.loads(notebook_json)
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None:
                for key in [k for k in data if k.startswith("image/") or "widget" in k]:
                    del data[key]
                if not data:
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def size_table(dest: Path) -> str:
    rows = ["| size | params | steps | epochs | stopped | train time | tokens/s | best val bpb | held-out bpb |"
            " train bpb at best |", "|---|---|---|---|---|---|---|---|---|---|"]
    results = read_json(dest / "results.json") if (dest / "results.json").exists() else {"sizes": []}
    by_size = {r["size"]: r for r in results["sizes"]}
    for size in SIZES:
        path = dest / "metrics" / f"{size}.json"
        if not path.exists():
            continue
        m = read_json(path)
        heldout = by_size.get(size, {}).get("heldout_bpb")
        rows.append(
            f"| {size} | {m['n_params'] / 1e6:.2f}M | {m['steps_done']} | {m['epochs_done']} | "
            f"{m['stopped_because'].split(' (')[0]} | {m['train_time_s']:.0f} s | {m['train_tokens_per_s']:,.0f} | "
            f"{m['best_val_bpb']:.3f} | {'' if heldout is None else f'{heldout:.3f}'} | {m['train_bpb_at_best']:.3f} |"
        )
    return "\n".join(rows)


def baseline_table(dest: Path) -> str:
    results = read_json(dest / "results.json")
    rows = ["| baseline | val bpb |", "|---|---|"]
    rows += [f"| {b['baseline']} | {b['val_bpb']:.3f} |" for b in results["baselines"]]
    return "\n".join(rows)


def more_data_table(dest: Path) -> str:
    section = read_json(dest / "results.json")["more_data"]
    rows = ["| size | data | train tokens | tokens seen | epochs | stopped | best val bpb | held-out bpb |",
            "|---|---|---|---|---|---|---|---|"]
    rows += [f"| {r['size']} | {r['data']} | {r['train_tokens']:,} | {r['tokens_seen']:,} | {r['epochs']} | "
             f"{r['stopped_because'].split(' (')[0]} | {r['val_bpb']:.3f} | {r['heldout_bpb']:.3f} |"
             for r in section["runs"]]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO_ROOT))
    parser.add_argument("--name", required=True, help="e.g. quick-cpu")
    args = parser.parse_args()
    dest = collect(OutputDirs(args.out), args.name)
    print(size_table(dest))
    if (dest / "results.json").exists():
        print()
        print(baseline_table(dest))
        if "more_data" in read_json(dest / "results.json"):
            print()
            print(more_data_table(dest))


if __name__ == "__main__":
    main()
