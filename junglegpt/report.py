"""Copy a run's small result files into results/<name>/ and print its tables as Markdown for the README.

    python -m junglegpt.report --out . --name quick-cpu

Copied: results.json, each size's metrics.json, the run summary, the figures, and the executed
notebooks as a reader wants them: text, tables and pictures (each picture at most
MAX_IMAGE_WIDTH pixels wide, which keeps a notebook well under 1.5 MB), and each progress bar in
its final state as text (the widget state it came from is removed: it is what makes a copy
megabytes, and GitHub cannot draw it). Never checkpoints or the book texts.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import shutil
from pathlib import Path

from .io import atomic_write_text, read_json
from .paths import REPO_ROOT, OutputDirs
from .sizes import SIZES

LINKED_TRAINING_RUN = "03_train_1M"  # the one copy of 03 the notebook links; the other sizes differ in numbers


def kept_executed(notebook: Path) -> bool:
    """Whether a run's executed notebook is copied: all but the copies of 03 besides 1M's (about half a
    megabyte each with their pictures; 06 and 07 run 03 too)."""
    return not notebook.stem.startswith("03_train") or notebook.stem == LINKED_TRAINING_RUN


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ReportError(ValueError):
    """A --name or --out that cannot be used: said in one line, before anything is written or deleted."""


def destination(name: str) -> Path:
    """results/<name>, for a name that is one plain folder name: with --fresh the folder is deleted
    first, so '..', '' or an absolute path would delete the repository, results/ or anything."""
    results = (REPO_ROOT / "results").resolve()
    dest = (results / name).resolve() if RUN_NAME.fullmatch(name or "") else None
    if dest is None or dest.parent != results:
        raise ReportError(f"--name {name!r}: a run's name is one folder name under results/ (letters, digits, "
                          "'.', '_' and '-', not starting with '.'), e.g. quick-cpu")
    return dest


def check_run_folder(out: OutputDirs) -> None:
    """A folder that a run of the series wrote: one of results.json, executed/ or models/ in it."""
    if not out.root.is_dir():
        raise ReportError(f"--out {out.root}: no such folder (give the --out of a run of ./run_all.sh)")
    if not any(p.exists() for p in (out.results_json, out.executed, out.models)):
        raise ReportError(f"--out {out.root} holds no run of the series (no results.json, executed/ or models/)")


def collect(out: OutputDirs, name: str, fresh: bool = False) -> Path:
    """Copy the run in `out` into results/<name>/; `fresh`: delete what was there first, so that nothing
    of an older run is left beside the new one."""
    dest = destination(name)
    check_run_folder(out)
    if fresh and dest.exists():
        shutil.rmtree(dest)
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
    if out.figures.is_dir():  # the figures as files, to link from the README and docs
        shutil.copytree(out.figures, dest / "figures", dirs_exist_ok=True)
    (dest / "executed").mkdir(exist_ok=True)
    for notebook in filter(kept_executed, sorted(out.executed.glob("*.ipynb"))):
        atomic_write_text(dest / "executed" / notebook.name, slimmed(notebook.read_text(encoding="utf-8")))
    return dest


MAX_IMAGE_WIDTH = 900  # pixels: about the width of GitHub's notebook view; a figure stays readable
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def slimmed(notebook_json: str) -> str:
    """An executed notebook as a reader wants it: pictures kept (narrowed to MAX_IMAGE_WIDTH), each
    progress bar as the text of its final state, and no widget state (what makes it megabytes)."""
    nb = json.loads(notebook_json)
    widgets = nb.get("metadata", {}).pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None:
                if WIDGET_VIEW in data:
                    final = progress_bar_text(widgets, data[WIDGET_VIEW].get("model_id", ""))
                    if final is not None:
                        data["text/plain"] = final
                for key in [k for k in data if "widget" in k]:
                    del data[key]
                if "image/png" in data:
                    data["image/png"] = narrowed_png(data["image/png"])
                if not data:
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def progress_bar_text(widgets: dict, model_id: str) -> str | None:
    """A tqdm bar's last state as tqdm prints it in a terminal ("1M: 100%|##########| 3/3 [...]"), from
    the widget state papermill saved; None when `model_id` is not a tqdm bar there."""
    box = widgets.get(model_id, {})
    parts = [widgets.get(child.removeprefix("IPY_MODEL_"), {}) for child in box.get("state", {}).get("children", [])]
    if box.get("model_name") != "HBoxModel" or [p.get("model_name") for p in parts] != [
            "HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None

    def plain(part):
        return html.unescape(re.sub(r"<[^>]+>", "", part["state"].get("value") or "")).replace("\u2007", " ")

    bar = parts[1]["state"]
    done = (bar.get("value") or 0) / bar["max"] if bar.get("max") else 0
    filled = min(10, int(10 * done))
    return f"{plain(parts[0])}|{'█' * filled}{' ' * (10 - filled)}|{plain(parts[2])}"


def narrowed_png(encoded: str) -> str:
    """A base64 PNG at most MAX_IMAGE_WIDTH pixels wide (re-encoded only when it is wider)."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    if image.width <= MAX_IMAGE_WIDTH:
        return encoded
    height = round(image.height * MAX_IMAGE_WIDTH / image.width)
    smaller = io.BytesIO()
    image.resize((MAX_IMAGE_WIDTH, height), Image.LANCZOS).save(smaller, format="PNG", optimize=True)
    return base64.b64encode(smaller.getvalue()).decode("ascii")


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
    parser.add_argument("--fresh", action="store_true", help="delete results/<name>/ first (a new run replaces it)")
    args = parser.parse_args()
    try:
        dest = collect(OutputDirs(args.out), args.name, fresh=args.fresh)
    except ReportError as err:
        parser.error(str(err))
    print(size_table(dest))
    if (dest / "results.json").exists() and "baselines" in read_json(dest / "results.json"):
        print()
        print(baseline_table(dest))
        if "more_data" in read_json(dest / "results.json"):
            print()
            print(more_data_table(dest))


if __name__ == "__main__":
    main()
