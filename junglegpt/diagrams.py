"""Diagrams drawn by code: the pictures a learner would rather look at than read.

Each function returns a matplotlib figure; the notebooks show them, and
`scripts/draw_diagrams.py` saves the ones that need no data to docs/diagrams/ for the README.

- `pipeline()`: the series, what each notebook makes and the next one reads (README, 01, 03);
- `split(parts, split)`: where the validation slice sits in each part of the book (01);
- `gpt2_block(size)`: one GPT-2 block with the shapes of one size (03);
- `blocks_to_pairs(tokens, block_size)`: blocks of tokens becoming (input, label) pairs (03);
- `mixer()`: the network, count models and the mixer that weighs them (04).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.08", "linewidth": 1.2}
ARROW = {"arrowstyle": "-|>", "color": "0.3", "linewidth": 1.2, "shrinkA": 2, "shrinkB": 2}


def _box(ax, x, y, w, h, text, color, fontsize=10, weight="normal"):
    """A rounded box with its centre at (x, y); returns its edges (left, right, bottom, top)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, facecolor=color, edgecolor="0.25", **BOX))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight=weight, wrap=True)
    return x - w / 2, x + w / 2, y - h / 2, y + h / 2


def _arrow(ax, start, end, label="", offset=(0, 0.12), fontsize=8.5, **style):
    ax.annotate("", xy=end, xytext=start, arrowprops={**ARROW, **style})
    if label:
        mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(*mid, label, ha="center", va="center", fontsize=fontsize, color="0.15",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})


def _canvas(width, height, xlim, ylim):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set(xlim=xlim, ylim=ylim)
    ax.axis("off")
    return fig, ax


def pipeline():
    """The series as a pipeline: each notebook, what it writes, and which notebook reads it."""
    fig, ax = _canvas(13, 4.6, (0, 13), (0, 4.6))
    core, extra, out = "#cfe3f7", "#fde2c4", "#e4f2dc"
    w, h = 2.0, 0.9
    _box(ax, 1.2, 2.2, w, h, "01 data\nclean, split", core, weight="bold")
    _box(ax, 4.3, 2.2, w, h, "02 tokenizer\nbyte-level BPE", core, weight="bold")
    _box(ax, 7.4, 2.2, w, h, "03 train\none size a run", core, weight="bold")
    _box(ax, 11.2, 3.5, w, h, "04 evaluate\nall sizes", core, weight="bold")
    _box(ax, 11.2, 2.2, w, h, "05 generate\nplayground", core, weight="bold")
    _box(ax, 11.2, 0.9, w, h, "08 publish\nto the Hub", extra, weight="bold")
    _box(ax, 5.6, 0.55, 1.9, 0.8, "06 fine-tune\nGPT-2", extra)
    _box(ax, 9.2, 0.55, 1.9, 0.8, "07 more data\n23 books", extra)
    _arrow(ax, (2.2, 2.2), (3.3, 2.2), "data/train.txt\ndata/val.txt", offset=(0, 0.45))
    _arrow(ax, (5.3, 2.2), (6.4, 2.2), "tokenizer/", offset=(0, 0.3))
    _arrow(ax, (8.4, 2.4), (10.2, 3.4), "models/<size>/", offset=(-0.2, 0.3))
    _arrow(ax, (8.4, 2.2), (10.2, 2.2))
    _arrow(ax, (8.4, 2.0), (10.2, 1.0))
    _arrow(ax, (5.6, 0.95), (6.9, 1.75), "runs 03", offset=(-0.45, 0.05), linestyle="--")
    _arrow(ax, (9.2, 0.95), (7.9, 1.75), "runs 03", offset=(0.45, 0.05), linestyle="--")
    ax.text(7.4, 3.1, "× 8 sizes: 1M … 100M\n(run_all.sh runs them all)", ha="center", fontsize=9)
    ax.text(12.35, 3.5, "results.json\nfigures/", ha="left", va="center", fontsize=8.5, color="0.15")
    _box(ax, 1.2, 3.9, 2.0, 0.6, "The Jungle Book\n(Project Gutenberg)", out, fontsize=8.5)
    _arrow(ax, (1.2, 3.6), (1.2, 2.65))
    ax.set_title("The series: what each notebook writes, and which one reads it", fontsize=12)
    return fig


def split(parts: list[dict], split_: dict[str, list[dict]]):
    """One bar per part of the book, its length in characters; the validation slice in orange.

    `parts` are `data.clean_book`'s parts, `split_` what `data.split_parts` made of them.
    """
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(parts) + 1.2))
    for row, (part, val) in enumerate(zip(parts, split_["validation"], strict=True)):
        length = len(part["text"])
        ax.barh(row, length, color="#9ecae1", height=0.7)
        first = val["text"].split("\n\n")[0] if val["text"] else ""
        start = part["text"].find(first) if first else -1
        if start >= 0:
            ax.barh(row, len(val["text"]), left=start, color="#f28e2b", height=0.7)
        else:  # too short to cut a slice from, or every paragraph of it also occurs in train
            ax.text(length + 300, row, "no validation slice", va="center", fontsize=8, color="0.35")
    ax.set_yticks(range(len(parts)), [p["title"] for p in parts], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("characters")
    ax.set_title("Validation (orange): one contiguous slice of each part, about a tenth of it")
    ax.grid(axis="y", visible=False)
    return fig


def gpt2_block(size, batch: int = 1, block_size: int = 128):
    """One GPT-2 block, bottom to top, with the tensor shapes of `size` (a sizes.ModelSize)."""
    d, heads = size.n_embd, size.n_head
    b, t = batch, block_size
    fig, ax = _canvas(11, 8.2, (0, 11), (0, 8.2))
    norm, attn, mlp, add = "#e8e8e8", "#cfe3f7", "#e4f2dc", "white"
    x0 = 4.0  # the residual stream runs up this column
    ax.text(x0, 0.25, f"x: ({b}, {t}, {d})  (batch, tokens, n_embd)", ha="center", fontsize=10)
    _box(ax, x0, 1.1, 2.6, 0.5, "LayerNorm", norm)
    _box(ax, x0, 2.4, 3.6, 1.4, "causal self-attention\n"
         f"{heads} heads of {d // heads}\neach token looks only left", attn, weight="bold")
    _box(ax, x0, 3.7, 0.5, 0.5, "+", add, fontsize=14)
    _box(ax, x0, 4.6, 2.6, 0.5, "LayerNorm", norm)
    _box(ax, x0, 5.9, 3.6, 1.4, f"MLP\n{d} → {4 * d} → {d}\nGELU between", mlp, weight="bold")
    _box(ax, x0, 7.2, 0.5, 0.5, "+", add, fontsize=14)
    ax.text(x0, 7.85, f"out: ({b}, {t}, {d}), to the next block", ha="center", fontsize=10)
    for y0, y1 in ((0.45, 0.85), (1.35, 1.7), (3.1, 3.45), (3.95, 4.35), (4.85, 5.2), (6.6, 6.95), (7.45, 7.7)):
        _arrow(ax, (x0, y0), (x0, y1))
    for y_from, y_to in ((0.65, 3.7), (3.95, 7.2)):  # residual connections: around the layer, then added
        side = x0 - 2.3
        ax.plot([x0, side, side], [y_from, y_from, y_to], color="#d62728", linewidth=1.4)
        _arrow(ax, (side, y_to), (x0 - 0.27, y_to), color="#d62728", linewidth=1.4)
    ax.text(0.9, 2.25, "residual:\nx + attn(LN(x))", ha="center", color="#d62728", fontsize=9)
    ax.text(0.9, 5.75, "residual:\nx + mlp(LN(x))", ha="center", color="#d62728", fontsize=9)
    shapes = (f"q, k, v: ({b}, {heads}, {t}, {d // heads}) each\n"
              f"scores q·kᵀ/√{d // heads}: ({b}, {heads}, {t}, {t})\n"
              "mask: −∞ above the diagonal, then softmax\n"
              f"weights · v → ({b}, {heads}, {t}, {d // heads})\n"
              f"heads joined, projected: ({b}, {t}, {d})")
    ax.text(6.3, 2.4, shapes, va="center", fontsize=9, family="monospace")
    ax.text(6.3, 5.9, f"hidden: ({b}, {t}, {4 * d})\nback to ({b}, {t}, {d})", va="center", fontsize=9,
            family="monospace")
    ax.set_title(f"One GPT-2 block of the {size.name} model ({size.n_layer} of them, stacked)", fontsize=12)
    return fig


def _printable(token: str) -> str:
    """A byte-level BPE token as a reader can see it: its leading space as ·, a newline as ↵."""
    return token.replace("Ġ", "·").replace("Ċ", "↵") or "∅"


def blocks_to_pairs(tokens: list[str], block_size: int = 8, n_blocks: int = 2):
    """Consecutive blocks of `block_size` tokens; each is both input and label, and position i is
    scored on token i + 1 (GPT2LMHeadModel shifts the labels itself)."""
    shown = tokens[: block_size * n_blocks]
    width = len(shown)
    fig, ax = _canvas(max(9.0, 0.95 * width + 1.5), 3.6, (-1.6, width + 0.2), (0, 3.6))
    ax.text(-1.5, 3.0, "the text", va="center", fontsize=9.5)
    ax.text(-1.5, 1.65, "input_ids", va="center", fontsize=9.5)
    ax.text(-1.5, 0.45, "scored on", va="center", fontsize=9.5)
    colors = ["#cfe3f7", "#fde2c4"]
    for i, token in enumerate(shown):
        block = i // block_size
        _box(ax, i + 0.5, 3.0, 0.9, 0.5, _printable(token), colors[block % 2], fontsize=8.5)
        _box(ax, i + 0.5, 1.65, 0.9, 0.5, _printable(token), colors[block % 2], fontsize=8.5)
        last = (i + 1) % block_size == 0
        label = "(none)" if last else _printable(shown[i + 1])
        _box(ax, i + 0.5, 0.45, 0.9, 0.5, label, "white" if last else colors[block % 2], fontsize=8.5)
        _arrow(ax, (i + 0.5, 1.38), (i + 0.5, 0.72))
    for block in range(n_blocks):
        left, right = block * block_size, (block + 1) * block_size
        ax.annotate("", xy=(left + 0.05, 2.45), xytext=(right - 0.05, 2.45),
                    arrowprops={"arrowstyle": "|-|", "color": "0.35"})
        ax.text((left + right) / 2, 2.25, f"block {block + 1}: labels = input_ids (the model shifts them)",
                ha="center", va="top", fontsize=8.5)
    ax.set_title(f"Blocks of {block_size} tokens, side by side, never overlapping: every position "
                 "is scored on the token after it", fontsize=11)
    return fig


def mixer():
    """Three predictors of the next token and the mixer that weighs them, token by token (04)."""
    fig, ax = _canvas(12, 4.4, (0, 12), (0, 4.4))
    part, mix, out = "#cfe3f7", "#fde2c4", "#e4f2dc"
    _box(ax, 1.9, 3.6, 3.2, 0.9, "network (GPT-2)\ngrammar, long context;\nslow to learn a new name", part)
    _box(ax, 1.9, 2.2, 3.2, 0.9, "counts of what followed\nthe last 0-4 tokens;\nlearn a name at one sighting", part)
    _box(ax, 1.9, 0.8, 3.2, 0.9, "match model: the last\nrepeat of these tokens\ngoes on as it did", part)
    _box(ax, 6.6, 2.2, 2.6, 1.6, "mixer\np = w₁p₁ + w₂p₂ + w₃p₃\n\none set of weights\nper context", mix, weight="bold")
    _box(ax, 10.4, 2.2, 2.4, 0.9, "p(next token)\nits code length:\n−log₂ p bits", out, weight="bold")
    for y, label in ((3.6, "p₁"), (2.2, "p₂"), (0.8, "p₃")):
        _arrow(ax, (3.5, y), (5.3, 2.2 + (y - 2.2) * 0.35), label, offset=(0, 0.15))
    _arrow(ax, (7.9, 2.2), (9.2, 2.2))
    ax.text(8.6, 0.6, "then every part learns from the token,\nand the mixer moves weight to the parts\n"
            "that gave it a high p:\nwᵢ ← wᵢ·pᵢ(token), normalised",
            ha="center", va="center", fontsize=9.5, color="0.15")
    return fig
