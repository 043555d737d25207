"""The figures show what their titles claim: the right range, every size, legends off the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from junglegpt import figures, textstats  # noqa: E402
from junglegpt.sizes import SIZES  # noqa: E402


def _rows():
    return [{"size": name, "params": (i + 1) * 1e6, "val_bpb": 1.90 + 0.01 * i, "heldout_bpb": 2.40 + 0.01 * i,
             "steps": 100 * (8 - i), "tokens_per_step": 8192, "train_tokens": 54_000, "tokens_per_s": 1e4 / (i + 1),
             "best_step": 50, "longest_copied_chars": 20.0} for i, name in enumerate(SIZES)]


BASELINES = [{"baseline": "byte unigram", "val_bpb": 4.53}, {"baseline": "Kneser-Ney 3-gram", "val_bpb": 1.917},
             {"baseline": "Kneser-Ney 4-gram", "val_bpb": 1.918}, {"baseline": "PPMd (order 10)", "val_bpb": 1.865}]


def _legend_overlaps_an_axes(fig) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.get_visible()]
    return any(leg.get_window_extent(renderer).overlaps(box) for leg in legends for box in boxes)


@pytest.mark.parametrize("profile, panels", [("full", 1), ("quick", 2)])
def test_bpb_vs_size_keeps_far_baselines_off_the_axis_and_the_legend_off_the_data(profile, panels):
    fig = figures.bpb_vs_size(_rows(), BASELINES, profile)
    axes = fig.axes
    assert len(axes) == panels  # quick: also against training compute
    low, high = axes[0].get_ylim()
    assert low < 1.865 and high < 3.0  # PPMd in range; the byte unigram (4.53) is not drawn ...
    assert "byte unigram 4.53" in " ".join(t.get_text() for t in fig.texts)  # ... but named
    labels = axes[-1].get_legend_handles_labels()[1]
    assert "Kneser-Ney 3-gram: 1.917" in labels and not any("4-gram" in label for label in labels)
    assert not _legend_overlaps_an_axes(fig)


def test_train_vs_val_has_a_panel_per_size_and_one_legend_outside_them():
    history = [{"epoch": e, "train_bpb": 3 - 0.03 * e, "val_bpb": 3 - 0.02 * e + 0.0004 * e * e} for e in range(60)]
    fig = figures.train_vs_val({name: history for name in SIZES}, "a test run")
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(SIZES)
    assert fig.axes[0].get_title() == "1M: best 2.750 at epoch 25"
    assert not _legend_overlaps_an_axes(fig)


def test_copying_bars_start_at_zero_and_show_the_yardstick():
    fig = figures.copying_vs_size(_rows(), heldout_copy_chars=18.6)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0
    assert any("18.6" in label or "19" in label for label in ax.get_legend_handles_labels()[1])


def test_cost_vs_size_is_seconds_per_epoch_and_to_the_best_step():
    fig = figures.cost_vs_size(_rows(), "a test run")
    per_epoch, to_best = (line.get_ydata() for line in fig.axes[0].get_lines())
    assert per_epoch[0] == pytest.approx(5.4) and to_best[-1] == pytest.approx(50 * 8192 / 1250)


def test_chance_copy_is_the_mean_longest_shared_span_of_evenly_spaced_passages():
    source = "the quick brown fox jumps over the lazy dog"
    reference = "xxquick brownyy" * 4
    assert textstats.chance_copy_chars(reference, source, length=15, passages=3) == len("quick brown")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_the_pipeline_diagram_names_every_notebook_and_what_passes_between_them():
    from junglegpt import diagrams

    text = "\n".join(_texts(diagrams.pipeline()))
    for notebook in ("01 data", "02 tokenizer", "03 train", "04 evaluate", "05 generate", "06 fine-tune",
                     "07 more data", "08 publish"):
        assert notebook in text
    for carried in ("data/train.txt", "tokenizer/", "models/<size>/", "results.json"):
        assert carried in text


@pytest.mark.parametrize("name", ["1M", "59M"])
def test_the_block_diagram_shows_the_shapes_of_its_size(name):
    from junglegpt import diagrams
    from junglegpt.sizes import get_size

    size = get_size(name)
    d, heads = size.n_embd, size.n_head
    text = "\n".join(_texts(diagrams.gpt2_block(size, batch=2, block_size=64)))
    assert f"q, k, v: (2, {heads}, 64, {d // heads})" in text
    assert f"({2}, {heads}, 64, 64)" in text  # the attention scores: every position against every one
    assert f"{d} → {4 * d} → {d}" in text
    assert f"{size.n_layer} of them" in text


def test_the_split_diagram_puts_each_validation_slice_where_it_is_in_its_part():
    from junglegpt import data, diagrams

    parts = [{"title": f"part {i}", "kind": "story",
              "text": "\n\n".join(f"paragraph {i}.{j} " + "word " * (5 + j % 7) for j in range(40))}
             for i in range(3)]
    parts.append({"title": "a one-stanza song", "kind": "song", "text": "one stanza only"})
    split = data.split_parts(parts, seed=7)
    fig = diagrams.split(parts, split)
    bars = [p for p in fig.axes[0].patches]
    slices = [b for b in bars if b.get_x() > 0 or b.get_width() < max(len(p["text"]) for p in parts) / 2]
    for part, val in zip(parts[:3], split["validation"][:3], strict=True):
        start = part["text"].index(val["text"])
        assert any(abs(b.get_x() - start) < 1e-6 and abs(b.get_width() - len(val["text"])) < 1e-6 for b in slices)
    assert "no validation slice" in _texts(fig)


def test_the_pairs_diagram_scores_each_position_on_the_next_token_of_its_own_block():
    from junglegpt import diagrams

    tokens = [f"t{i}" for i in range(12)]
    fig = diagrams.blocks_to_pairs(tokens, block_size=4, n_blocks=3)
    rows = {}
    for t in fig.axes[0].texts:
        rows.setdefault(round(t.get_position()[1], 2), []).append((t.get_position()[0], t.get_text()))
    scored = [text for x, text in sorted(rows[0.45]) if x >= 0]  # the row name sits left of 0
    assert scored == ["t1", "t2", "t3", "(none)", "t5", "t6", "t7", "(none)", "t9", "t10", "t11", "(none)"]
