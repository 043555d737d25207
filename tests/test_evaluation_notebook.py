"""Notebook 04: results.json, figures, and what happens when sizes are missing."""

from __future__ import annotations

import json
import math
import shutil

from junglegpt import mixture
from junglegpt.sizes import SIZES

from .helpers import copy_inputs, executed_text, run_notebook


def test_results_json_has_every_size_and_every_baseline(smoke_run):
    out, _ = smoke_run
    results = json.loads(out.results_json.read_text())
    assert [r["size"] for r in results["sizes"]] == list(SIZES)
    for record in results["sizes"]:
        for key in ("params", "val_bpb", "heldout_bpb", "train_bpb_at_best", "best_step", "train_time_s",
                    "tokens_per_s", "device", "label", "distinct_1", "longest_copied_chars", "train_8gram_share"):
            assert key in record, key
        metrics = json.loads((out.model(record["size"]) / "metrics.json").read_text())
        assert abs(record["val_bpb"] - metrics["best_val_bpb"]) < 1e-3 * metrics["best_val_bpb"]
    names = {b["baseline"] for b in results["baselines"]}
    assert {"byte unigram", "Kneser-Ney 3-gram", "gzip", "bz2", "lzma"} <= names
    assert {s["size"] for s in results["samples"]} == set(SIZES)
    assert all(s["text"].startswith(s["prompt"]) for s in results["samples"])


def test_the_mixture_is_recorded_for_both_texts_and_never_far_worse_than_the_network(smoke_run):
    """results.json's "mixture": both texts, the network frozen and learning; settings from the rule's
    grid; and the fixed-share bound (junglegpt.mixture): never worse than the network alone by more
    than ln(4) nats plus ln(1 / (1 - share)) per token, here in bits per byte of the scored text."""
    out, _ = smoke_run
    results = json.loads(out.results_json.read_text())
    rows = results["mixture"]
    assert sorted((r["text"], r["network"]) for r in rows) == [
        ("heldout", "dynamic"), ("heldout", "static"), ("val", "dynamic"), ("val", "static")]
    grid = [s.__dict__ for s in mixture.GRID]
    for row in rows:
        assert row["parts"]["settings"] in grid and row["parts"]["counts_settings"] in grid
        n_tokens, n_bytes = row["tokens"], row["bytes"]
        share = row["parts"]["settings"]["share"]
        overhead_bits = (math.log(4) + n_tokens * -math.log(1 - share)) / math.log(2)
        assert row["bpb"] <= row["parts"]["network_bpb"] + overhead_bits / n_bytes + 1e-9
        assert math.isfinite(row["parts"]["counts_and_match_bpb"])


def test_the_real_files_say_which_compressors_read_the_training_text(smoke_run):
    """04's real files: every classical compressor alone and primed, our model alone and as the
    mixture (both read the training text, through weights and counts); reading it first helps PPMd."""
    out, _ = smoke_run
    rows = json.loads(out.results_json.read_text())["file_sizes"]["rows"]
    size = {(r["compressor"], r["read the training text"]): r["bytes"] for r in rows}
    classical = {name for name, _ in size if not name.startswith("GPT-2")}
    assert {"gzip -9", "bz2 -9", "xz -9e"} <= classical
    assert all((name, read) in size for name in classical for read in ("no", "yes"))
    ppmd = next(name for name in classical if name.startswith("PPMd"))
    assert size[(ppmd, "yes")] < size[(ppmd, "no")]
    assert {("GPT-2 1M, alone, frozen", "yes"), ("GPT-2 1M, mixture, learning", "yes")} <= set(size)


def test_at_least_six_figures(smoke_run):
    out, _ = smoke_run
    assert len(list(out.figures.glob("04_*.png"))) >= 6


def test_missing_sizes_are_named_and_none_fails_clearly(smoke_run, tmp_path):
    out, _ = smoke_run
    shutil.copytree(out.data, tmp_path / "data")
    shutil.copytree(out.tokenizer, tmp_path / "tokenizer")
    ok, tail = run_notebook("04_evaluate", tmp_path, train_if_none="")  # asked not to train: stops, and says why
    assert not ok and "run 03_train.ipynb first" in tail

    for name in ("1M", "3M"):
        shutil.copytree(out.model(name), tmp_path / "models" / name)
    ok, tail = run_notebook("04_evaluate", tmp_path)
    assert ok, tail
    assert "missing: 7M, 15M, 22M, 37M, 59M, 100M" in executed_text(tmp_path, "04_evaluate")
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["size"] for r in results["sizes"]] == ["1M", "3M"]


def test_05_opened_with_no_trained_size_says_how_long_then_trains_1m_and_generates(smoke_inputs, tmp_path):
    """Notebook 05 opened alone (a fresh Kaggle or Colab session): no model, so it trains one first."""
    copy_inputs(smoke_inputs, tmp_path)
    ok, tail = run_notebook("05_generate", tmp_path, interactive=False, max_new_tokens=5)
    assert ok, tail
    said = executed_text(tmp_path, "05_generate")
    assert "No trained model in" in said and "which will take about" in said and "1M: about" in said
    assert (tmp_path / "models" / "1M" / "metrics.json").exists()
    assert [g["size"] for g in json.loads((tmp_path / "generations.json").read_text())["generations"]] == ["1M"]
