"""Figures: one look for all of them, saving them (a half-written PNG never replaces a good one),
and notebook 04's figures, drawn from plain numbers (the rows of results.json, the sizes' metrics.json).

One function per figure of 04, so that notebook 04 and `scripts/redraw_figures.py` (which redraws a
committed run's figures from its files, without the models) draw the same thing. Each returns the
figure; the caller saves it with `save_figure`, which adds the run's label.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from .io import atomic_write_bytes, read_json
from .sizes import SIZES


def setup_style() -> None:
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def save_figure(fig, folder: str | Path, name: str, label: str | None = None) -> Path:
    """Save `fig` as folder/name.png; `label` (e.g. 'quick, CPU') goes in the bottom-right corner."""
    if label:
        fig.text(0.995, 0.005, label, ha="right", va="bottom", fontsize=8, color="0.4")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return atomic_write_bytes(Path(folder) / f"{name}.png", buffer.getvalue())


# Baselines far above the models would squash the interesting range: they are named under the axis.
OFF_CHART_MARGIN = 0.25  # bits per byte above the worst model score still drawn


def _in_size_order(rows: list[dict]) -> list[dict]:
    order = list(SIZES)
    return sorted(rows, key=lambda row: order.index(row["size"]))


def bpb_vs_size(rows: list[dict], baselines: list[dict], profile: str):
    """Best validation and held-out bits per byte against parameters, with the baselines in range.

    In the quick profile every size had the same wall time: a second panel puts the same scores
    against the training compute each size got (6 × parameters × tokens seen).
    """
    rows = _in_size_order(rows)
    equal_compute = profile != "full"
    fig, axes = plt.subplots(1, 2 if equal_compute else 1, figsize=(13 if equal_compute else 9, 5), squeeze=False)
    scores = [r["val_bpb"] for r in rows] + [r["heldout_bpb"] for r in rows]
    lo, hi = min(scores), max(scores)
    shown = [b for b in baselines if b["val_bpb"] <= hi + OFF_CHART_MARGIN and not b["baseline"].startswith(
        ("Kneser-Ney 2", "Kneser-Ney 4"))]
    off_chart = [b for b in baselines if b["val_bpb"] > hi + OFF_CHART_MARGIN]
    xs = {"params": [r["params"] / 1e6 for r in rows]}
    if equal_compute:
        xs["flops"] = [6 * r["params"] * r["steps"] * r["tokens_per_step"] for r in rows]
    for ax, (kind, x) in zip(axes[0], xs.items(), strict=True):
        ax.plot(x, [r["val_bpb"] for r in rows], "o-", label="validation", zorder=3)
        ax.plot(x, [r["heldout_bpb"] for r in rows], "s--", label="Second Jungle Book (held out)", zorder=3)
        for i, (xi, r) in enumerate(zip(x, rows, strict=True)):
            ax.annotate(r["size"], (xi, r["val_bpb"]), textcoords="offset points", fontsize=7, ha="center",
                        xytext=(0, -13 if i % 2 else 7))
        for i, b in enumerate(shown):
            ax.axhline(b["val_bpb"], ls=":", lw=1.5, color=f"C{i + 2}", label=f"{b['baseline']}: {b['val_bpb']:.3f}")
        ax.set(xscale="log", ylabel="bits per byte (lower is better)",
               ylim=(min(lo, *(b["val_bpb"] for b in shown)) - 0.05, max(hi, *(b["val_bpb"] for b in shown)) + 0.05),
               xlabel="parameters (millions)" if kind == "params" else "training compute (FLOPs, 6 × N × tokens)")
    title = ("Best validation bits per byte vs model size (each trained until validation stopped improving)"
             if not equal_compute else "Bits per byte with equal compute: every size trained for the same time")
    fig.suptitle(title, fontsize=11)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    if off_chart:
        fig.text(0.01, 0.01, "Off the chart: " + ", ".join(f"{b['baseline']} {b['val_bpb']:.2f}" for b in off_chart),
                 fontsize=8, color="0.35")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def dynamic_vs_size(rows: list[dict], compressors: list[dict]):
    """Static (frozen) and dynamic (learning while reading) bits per byte against parameters, one panel
    for validation and one for the held-out book, with the compressors as horizontal lines: dashed
    for static PPMd, solid for PPMd and zpaq as they run (learning)."""
    rows = _in_size_order(rows)
    x = [r["params"] / 1e6 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, split, title in zip(axes, ("val", "heldout"), ("Validation", "The Second Jungle Book (held out)"),
                                strict=True):
        static, learning = [r[f"{split}_static_bpb"] for r in rows], [r[f"{split}_dynamic_bpb"] for r in rows]
        ax.plot(x, static, "o--", color="C0", label="our sizes, frozen (static)", zorder=3)
        ax.plot(x, learning, "o-", color="C3", label="our sizes, learning as they read (dynamic)", zorder=3)
        lines = []
        for i, c in enumerate(row for row in compressors if row["text"] == split):
            if c.get("static_bpb") is not None:
                lines.append((c["static_bpb"], "--", f"C{i + 4}", f"{c['compressor']}, static"))
            if c.get("dynamic_bpb") is not None:
                lines.append((c["dynamic_bpb"], "-", f"C{i + 4}", f"{c['compressor']}, learning"))
        for y, style, color, label in lines:
            ax.axhline(y, ls=style, lw=1.2, color=color, label=f"{label}: {y:.3f}")
        values = static + learning + [y for y, *_ in lines]
        ax.set(xscale="log", xlabel="model size (log scale of parameters)", ylabel="bits per byte (lower is better)",
               title=title, ylim=(min(values) - 0.05, max(values) + 0.05))
        ax.set_xticks(x, [r["size"] for r in rows])
        ax.minorticks_off()
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below the axis: covers nothing
    fig.suptitle("Frozen or learning while reading: our models and the compressors under the same protocol",
                 fontsize=11)
    fig.tight_layout()
    return fig


def train_vs_val(histories: dict[str, list[dict]], source: str):
    """Train and validation bits per byte over each size's whole run, one panel per size.

    `source` says which run the histories come from (the title names it).
    """
    names = [n for n in SIZES if n in histories]
    cols = min(4, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.9 * nrows + 0.6), sharey=True, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names, strict=False):
        history = histories[name]
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_bpb"] for h in history], "-", color="C0", label="train (same length as val)")
        ax.plot(epochs, [h["val_bpb"] for h in history], "-", color="C1", label="validation")
        best = min(history, key=lambda h: h["val_bpb"])
        ax.plot([best["epoch"]], [best["val_bpb"]], "o", color="C1", label="best validation (the weights kept)")
        ax.set_title(f"{name}: best {best['val_bpb']:.3f} at epoch {best['epoch']:.0f}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("bits per byte", fontsize=8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.97 - 0.02 * nrows))
    fig.suptitle(f"Train vs validation bits per byte over training ({source})", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92 - 0.02 * nrows))
    return fig


def cost_vs_size(rows: list[dict], source: str):
    """What a size costs: seconds per epoch at its measured throughput, and the time to its best step."""
    rows = _in_size_order(rows)
    x = [r["params"] / 1e6 for r in rows]
    per_epoch = [r["train_tokens"] / r["tokens_per_s"] for r in rows]
    to_best = [r["best_step"] * r["tokens_per_step"] / r["tokens_per_s"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(x, per_epoch, "o-", label="one epoch (seconds)")
    ax.plot(x, to_best, "s--", label="training until the best step (seconds)")
    for xi, r, y in zip(x, rows, to_best, strict=True):
        ax.annotate(r["size"], (xi, y), textcoords="offset points", xytext=(0, 8), fontsize=7, ha="center")
    ax.set(xscale="log", yscale="log", xlabel="parameters (millions)", ylabel="seconds (log scale)",
           title=f"What size costs, from measured throughput\n({source})")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def copying_vs_size(rows: list[dict], heldout_copy_chars: float):
    """The longest verbatim copy from the training text in each size's samples, against real prose.

    `heldout_copy_chars` is the same measure for passages of the held-out book of the samples'
    length: how long a span any new Kipling text shares with the training text by chance.
    """
    rows = _in_size_order(rows)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar([r["size"] for r in rows], [r["longest_copied_chars"] for r in rows], color="C0",
           label="generated samples (mean over prompts)")
    ax.axhline(heldout_copy_chars, color="C1", ls="--", lw=2,
               label=f"passages of The Second Jungle Book: {heldout_copy_chars:.0f}")
    ax.set(xlabel="model size", ylabel="longest span found verbatim in train (characters)", ylim=(0, None),
           title="Do the models copy the book? Longest verbatim span, vs real Kipling prose")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.15), ncol=2)
    fig.tight_layout()
    return fig


# The latest full-profile run, committed with the repository: its histories stand in for a quick
# run's, which has only two evaluations per size.
REFERENCE_RUN = Path(__file__).resolve().parent.parent / "results" / "full-gpu"


def reference_histories(run: Path = REFERENCE_RUN) -> tuple[dict[str, list[dict]], str] | None:
    """Each size's evaluation history in a committed run, and that run's label; None without one
    (an installed package on Kaggle or Colab has no results/ folder)."""
    if not (run / "results.json").exists():
        return None
    histories = {path.stem: read_json(path)["history"] for path in sorted((run / "metrics").glob("*.json"))
                 if path.stem in SIZES}
    return histories, read_json(run / "results.json")["runs"]
