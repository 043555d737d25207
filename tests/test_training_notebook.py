"""Notebook 03 end to end: what the model learns, resuming after a kill, and the saved folders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from junglegpt import training
from junglegpt.io import atomic_write_json, atomic_write_text, file_sha256
from junglegpt.paths import OutputDirs
from junglegpt.sizes import SIZES
from junglegpt.training import KILL_FOR_TEST_ENV

from .helpers import copy_inputs, executed_text, linked_copy, run_notebook


def test_smoke_sweep_leaves_all_eight_model_folders(smoke_run):
    out, _ = smoke_run
    for name, size in SIZES.items():
        metrics = json.loads((out.model(name) / "metrics.json").read_text())
        assert metrics["model_size"] == name and metrics["profile"] == "smoke"
        assert metrics["n_params"] == size.n_params()
        for key in ("best_val_loss", "best_val_bpb", "best_step", "train_loss_at_best", "train_time_s",
                    "train_tokens_per_s", "peak_memory_mb", "device", "seed", "history"):
            assert key in metrics, key
        assert {"step", "epoch", "train_loss", "val_loss", "val_bpb"} <= set(metrics["history"][0])
        for filename in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md"):
            assert (out.model(name) / filename).exists(), f"{name}/{filename}"
        assert not (out.model(name) / "training").exists(), "checkpoints are removed once the model is saved"


def test_the_smoke_run_of_03_shows_the_lesson_without_transformers_loss_type_note(smoke_run):
    """The first batch's loss and the bare loop print their numbers, and nothing else: not transformers'
    "`loss_type=None` was set in the config but it is unrecognized" (junglegpt.training drops it)."""
    out, _ = smoke_run
    said = executed_text(out.root, "03_train_1M")
    assert "largest difference: " in said and "untrained, first batch: " in said and "step 3: " in said
    assert "loss_type" not in said


def test_saved_model_loads_with_auto_classes_and_pipeline(smoke_run):
    out, _ = smoke_run
    folder = out.model("1M")
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    generate = pipeline("text-generation", model=model, tokenizer=tokenizer)
    text = generate("Deep in the jungle, Mowgli", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("Deep in the jungle, Mowgli")
    assert "best validation loss" in (folder / "README.md").read_text()


def test_unknown_size_fails_at_once_listing_the_valid_ones(tmp_path):
    ok, tail = run_notebook("03_train", tmp_path, model_size="5M")  # before it looks for any data
    assert not ok
    assert "1M, 3M, 7M, 15M, 22M, 37M, 59M, 100M" in tail


def test_negative_learning_rate_is_refused_before_training(smoke_inputs, tmp_path):
    copy_inputs(smoke_inputs, tmp_path)
    ok, tail = run_notebook("03_train", tmp_path, lr=-0.001)
    assert not ok and "learning rate" in tail
    assert not (tmp_path / "models").exists()


def test_the_model_learns_the_next_token_not_the_one_after(tmp_path):
    """Train on the alphabet, over and over: after 'abcdefghij' the model must say 'k', not 'l'."""
    out = OutputDirs(tmp_path).make()
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    out.train_txt.write_text(alphabet * 3000, encoding="utf-8")
    out.val_txt.write_text(alphabet * 100, encoding="utf-8")
    ok, tail = run_notebook("02_tokenizer", tmp_path, vocab_size=257)  # bytes only: one letter, one token
    assert ok, tail
    ok, tail = run_notebook("03_train", tmp_path, model_size="1M", max_steps=60, eval_interval=30,
                            checkpoint_interval=60, block_size=64, batch_size=8, lr=3e-3, warmup_steps=5,
                            dropout=0.0, train_eval_tokens=512)
    assert ok, tail
    model = AutoModelForCausalLM.from_pretrained(out.model("1M")).eval()
    tokenizer = AutoTokenizer.from_pretrained(out.model("1M"))
    ids = torch.tensor([tokenizer.encode(alphabet[3:] + alphabet[:10])])
    with torch.no_grad():
        predicted = model(input_ids=ids).logits[0].argmax(-1)
    following = tokenizer.decode(predicted[-10:])
    assert following == "bcdefghijk", following  # each position predicts the letter right after it


# The plateau schedule and the moving average add state a resumed run must get back: the step its
# decay started (here at step 4, once validation got worse at a high learning rate), and the average.
RECIPES = {"cosine": {},
           "plateau and average": dict(schedule="plateau", decay_patience=1, decay_fraction=1.0, ema_decay=0.5,
                                       lr=0.05)}
# Checkpoints every 2 steps, of which the two newest are kept: a kill at step 6 leaves 2 and 4.
# fp32 named, since a CPU with fast bf16 would choose bf16 by itself.
RESUMABLE = dict(model_size="1M", max_steps=10, eval_interval=2, checkpoint_interval=2, patience=100,
                 precision="fp32")
_STRAIGHT: dict[str, dict] = {}


def straight_run(smoke_inputs, tmp_path_factory, recipe: str) -> dict:
    """The metrics of an uninterrupted run with these settings: what every resumed run must match.
    Made once per recipe, for the tests of this file that compare with it."""
    if recipe not in _STRAIGHT:
        out = copy_inputs(smoke_inputs, tmp_path_factory.mktemp("straight"))
        ok, tail = run_notebook("03_train", out.root, **RESUMABLE, **RECIPES[recipe])
        assert ok, tail
        _STRAIGHT[recipe] = json.loads((out.model("1M") / "metrics.json").read_text())
    return _STRAIGHT[recipe]


def test_killed_run_resumes_to_the_same_result(smoke_inputs, tmp_path, tmp_path_factory):
    """With the plateau schedule and the moving average (the cosine schedule's resume is checked by
    the damaged-checkpoint test below)."""
    recipe = "plateau and average"
    settings = {**RESUMABLE, **RECIPES[recipe]}
    straight = straight_run(smoke_inputs, tmp_path_factory, recipe)
    killed = copy_inputs(smoke_inputs, tmp_path / "killed")
    # Killed (like kill -9) half-way through writing the checkpoint of step 6.
    ok, tail = run_notebook("03_train", killed.root, env={KILL_FOR_TEST_ENV: "6"}, **settings)
    assert not ok
    assert "The kernel died, probably out of memory. Rerun the same command" in tail
    state_dir = killed.model("1M") / "training"
    assert sorted(p.name for p in state_dir.glob("step_*")) == ["step_000002", "step_000004"]  # the two newest
    assert list(state_dir.glob(".step_000006*")), "the half-written checkpoint is left as a temporary folder"

    ok, tail = run_notebook("03_train", killed.root, **settings)
    assert ok, tail
    assert "resuming from step_000004" in executed_text(killed.root, "03_train")
    resumed = json.loads((killed.model("1M") / "metrics.json").read_text())
    assert resumed["history"] == straight["history"]
    assert resumed["best_val_loss"] == straight["best_val_loss"]
    assert not state_dir.exists()
    # the decay began before the checkpoint the run resumed from
    assert straight["stopped_because"] == "learning rate decayed to zero (decay from step 4)"
    assert [h["lr"] for h in straight["history"]] == [0.05, 0.05, 0.025, 0.0]


@pytest.mark.parametrize("force", [False, True])
def test_finished_size_is_not_retrained_unless_forced(smoke_run, tmp_path, force):
    root = tmp_path / "copy"
    linked_copy(smoke_run[0].root, root, ignore=shutil.ignore_patterns("executed", "hub"))
    ok, tail = run_notebook("03_train", root, model_size="1M", force=force)
    assert ok, tail
    said = executed_text(root, "03_train")
    assert ("already finished with these settings" in said) != force
    # Retrained or not, same seed and settings on the same machine: the same numbers.
    first = json.loads((smoke_run[0].model("1M") / "metrics.json").read_text())
    again = json.loads((OutputDirs(root).model("1M") / "metrics.json").read_text())
    assert again["history"] == first["history"]


def test_quick_profile_measures_its_step_time_and_fills_its_budget(smoke_inputs, tmp_path):
    out = copy_inputs(smoke_inputs, tmp_path)
    ok, tail = run_notebook("03_train", out.root, profile="quick", model_size="1M", time_budget_s=6)
    assert ok, tail
    metrics = json.loads((out.model("1M") / "metrics.json").read_text())
    budget = metrics["step_budget"]
    # the timing is paid from the budget too
    assert budget["max_steps"] == training.steps_for_budget(6 - budget["measure_s"], budget["step_s"],
                                                            budget["eval_s"])
    planned = training.with_step_count(training.training_settings("1M", "quick"), budget["max_steps"])
    assert metrics["settings"]["max_steps"] == budget["max_steps"] >= 1
    assert metrics["settings"]["warmup_steps"] == planned["warmup_steps"]
    assert metrics["requested_settings"]["max_steps"] is None  # what a rerun is recognised by
    # Every planned step is taken, or the budget stops the run and its last step is still scored.
    assert metrics["history"][-1]["step"] == metrics["steps_done"]
    assert metrics["steps_done"] == budget["max_steps"] or metrics["stopped_because"].startswith("time budget")
    assert "steps fit in 6 s" in executed_text(out.root, "03_train")


def test_an_interrupted_quick_run_keeps_the_step_count_it_measured(smoke_inputs, tmp_path):
    out = copy_inputs(smoke_inputs, tmp_path)
    atomic_write_json(out.model("1M") / "training" / "step_budget.json",
                      {"step_s": 0.5, "eval_s": 1.0, "budget_s": 600, "max_steps": 6})
    ok, tail = run_notebook("03_train", out.root, profile="quick", model_size="1M", time_budget_s=600)
    assert ok, tail
    metrics = json.loads((out.model("1M") / "metrics.json").read_text())
    assert metrics["steps_done"] == metrics["settings"]["max_steps"] == 6
    assert [h["step"] for h in metrics["history"]] == [3, 6]


def test_bf16_training_changes_the_numbers_a_little_and_keeps_fp32_weights(smoke_inputs, tmp_path,
                                                                          tmp_path_factory):
    runs = {"fp32": straight_run(smoke_inputs, tmp_path_factory, "cosine")}
    out = copy_inputs(smoke_inputs, tmp_path)  # bf16 is forced: a CPU without bf16 instructions emulates it
    ok, tail = run_notebook("03_train", out.root, **{**RESUMABLE, "precision": "bf16"})
    assert ok, tail
    runs["bf16"] = json.loads((out.model("1M") / "metrics.json").read_text())
    for precision in runs:
        assert runs[precision]["label"] == f"smoke, CPU, {precision}"
    model = AutoModelForCausalLM.from_pretrained(out.model("1M"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    fp32, bf16 = ([h["val_loss"] for h in runs[p]["history"]] for p in ("fp32", "bf16"))
    assert fp32 != bf16, "precision='bf16' must change how the training step computes"
    assert all(abs(a - b) < 0.05 for a, b in zip(fp32, bf16, strict=True)), (fp32, bf16)


def test_a_damaged_checkpoint_falls_back_to_the_one_before(smoke_inputs, tmp_path, tmp_path_factory):
    """Killed while writing the checkpoint of step 8, then the newest whole one (6) damaged: the run
    resumes from step 4, and ends as the uninterrupted run did (the cosine schedule)."""
    straight = straight_run(smoke_inputs, tmp_path_factory, "cosine")
    damaged = copy_inputs(smoke_inputs, tmp_path / "damaged")
    ok, tail = run_notebook("03_train", damaged.root, env={KILL_FOR_TEST_ENV: "8"}, **RESUMABLE)
    assert not ok
    assert "The kernel died, probably out of memory. Rerun the same command" in tail
    state_dir = damaged.model("1M") / "training"
    assert sorted(p.name for p in state_dir.glob("step_*")) == ["step_000004", "step_000006"]  # the two newest
    assert list(state_dir.glob(".step_000008*")), "the half-written checkpoint is left as a temporary folder"
    weights = state_dir / "step_000006" / "best_model.safetensors"
    assert weights.exists(), "the best weights are part of the checkpoint folder"
    weights.write_bytes(weights.read_bytes()[:100])  # damaged after it was written

    ok, tail = run_notebook("03_train", damaged.root, **RESUMABLE)
    assert ok, tail
    said = executed_text(damaged.root, "03_train")
    assert "could not load the checkpoint step_000006" in said and "resuming from step_000004" in said
    resumed = json.loads((damaged.model("1M") / "metrics.json").read_text())
    assert resumed["history"] == straight["history"]
    assert resumed["best_val_loss"] == straight["best_val_loss"]
    assert not state_dir.exists()


def test_a_finished_size_is_retrained_after_its_training_text_changes(smoke_run, tmp_path):
    out = OutputDirs(linked_copy(smoke_run[0].root, tmp_path / "copy",
                                 ignore=shutil.ignore_patterns("executed", "hub")))
    # as if notebook 01 had made another split (replaced, not appended to: the copy's files are links)
    atomic_write_text(out.train_txt, out.train_txt.read_text(encoding="utf-8")
                      + "\n\nNow this is the Law of the Jungle, as old and as true as the sky.\n")
    ok, tail = run_notebook("03_train", out.root, model_size="1M")
    assert ok, tail
    assert "already finished" not in executed_text(out.root, "03_train")
    metrics = json.loads((out.model("1M") / "metrics.json").read_text())
    assert metrics["train_sha256"] == file_sha256(out.train_txt)
