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
