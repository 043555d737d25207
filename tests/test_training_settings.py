"""Settings are checked before any work; an out-of-memory step is retried with a smaller micro-batch."""

from __future__ import annotations

import time

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt import environment, training


def test_defaults_exist_for_every_size_and_profile():
    for profile in ("smoke", "quick", "full"):
        for size in training.PEAK_LR:
            s = training.training_settings(size, profile)
            assert s["batch_size"] % s["micro_batch_size"] == 0


@pytest.mark.parametrize(
    "override, message",
    [
        ({"lr": -1e-3}, "learning rate"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"block_size": 1024}, "256 positions"),
        ({"micro_batch_size": 3, "batch_size": 8}, "must divide"),
        ({"dropout": 1.5}, "dropout"),
        ({"warmup_steps": 10_000}, "warmup_steps"),
        ({"max_steps": 2.5}, "max_steps"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(override, message):
    with pytest.raises(ValueError, match=message):
        training.training_settings("1M", "smoke", **override)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_batch():
    tried = []

    def step(micro):
        tried.append(micro)
        if micro > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return f"ok with {micro}"

    messages = []
    result, micro = training.halve_batch_on_oom(step, batch_size=8, micro_batch_size=8, on_change=messages.append)
    assert (result, micro) == ("ok with 2", 2)
    assert tried == [8, 4, 2]
    assert "4 accumulation steps" in messages[-1]


def test_out_of_memory_with_one_sequence_says_what_to_do():
    def step(micro):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(torch.OutOfMemoryError, match="smaller model_size"):
        training.halve_batch_on_oom(step, batch_size=4, micro_batch_size=4, on_change=lambda m: None)


@pytest.mark.parametrize("cuda, capability, cpu_bf16, expected", [
    (False, None, False, "fp32"), (True, (7, 5), True, "fp16"), (True, (8, 0), False, "bf16"),
    (True, (9, 0), False, "bf16")])
def test_auto_precision_on_gpus_by_capability_and_fp32_on_cpus_without_bf16(monkeypatch, cuda, capability, cpu_bf16,
                                                                             expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: cpu_bf16)
    never = lambda: pytest.fail("measured where no measurement is needed")  # noqa: E731
    assert training.choose_precision("auto", measure=never)[0] == expected
    # On a CPU, Accelerate's own autocast stays off: notebook 03 applies bf16 to the training step only.
    assert training.accelerate_mixed_precision(expected) == (expected if cuda else "no")


@pytest.mark.parametrize("fp32_s, bf16_s, expected, why", [
    (1.0, 1 / 2.10, "bf16", "bf16 (2.10x fp32, measured)"),  # AMX (issue 16's machine)
    (1.0, 1 / 2.32, "bf16", "bf16 (2.32x fp32, measured)"),  # AMD Zen 4
    (1.0, 1 / 0.77, "fp32", "fp32 (bf16 measured 0.77x)"),  # a Xeon with avx512_bf16 and no AMX
    (1.0, 1 / 1.02, "fp32", "fp32 (bf16 measured 1.02x)"),  # within the margin: fp32
])
def test_auto_precision_on_a_cpu_with_bf16_takes_the_measured_faster(monkeypatch, fp32_s, bf16_s, expected, why):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: True)
    assert training.choose_precision("auto", measure=lambda: (fp32_s, bf16_s)) == (expected, why)
    assert training.choose_precision("bf16", measure=lambda: (1.0, 9.0))[0] == "bf16"  # an explicit choice wins


def test_cpu_precision_timing_measures_both_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = torch.randint(0, 64, (2, 16))
    state = torch.random.get_rng_state()
    fp32_s, bf16_s = training.time_cpu_precisions(model, batch, rounds=1)
    assert fp32_s > 0 and bf16_s > 0
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())
    assert torch.random.get_rng_state().equal(state)


def test_precision_can_be_forced_and_bad_values_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: True)
    assert training.choose_precision("fp32") == ("fp32", "fp32 (requested)")
    assert training.choose_precision(" BF16 ")[0] == "bf16"
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        training.choose_precision("fp16")
    with pytest.raises(ValueError, match="choose one of auto, fp32, bf16, fp16"):
        training.check_precision("half")


def test_cpu_bf16_detection_falls_back_to_cpuinfo_flags(monkeypatch, tmp_path):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    real_path = environment.Path
    monkeypatch.setattr(environment, "Path", lambda p: real_path(cpuinfo) if p == "/proc/cpuinfo" else real_path(p))
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not training.cpu_supports_bf16()  # AVX-512 alone: oneDNN would only emulate bf16
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert training.cpu_supports_bf16()
    cpuinfo.unlink()
    assert not training.cpu_supports_bf16()  # no /proc/cpuinfo (macOS, Windows): fp32


def test_quick_profile_leaves_the_step_count_to_a_measurement(monkeypatch):
    s = training.training_settings("15M", "quick")
    assert s["max_steps"] is None and s["time_budget_s"] == 60
    assert training.training_settings("15M", "quick", max_steps=40)["max_steps"] == 40  # an override still wins
    monkeypatch.setitem(training.PROFILE_SETTINGS, "full",
                        dict(training.PROFILE_SETTINGS["full"], max_steps=None, time_budget_s=None))
    with pytest.raises(ValueError, match="needs a time_budget_s"):
        training.training_settings("1M", "full")


@pytest.mark.parametrize("step_s, eval_s, expected", [(0.25, 0.3, 237), (1.0, 5.0, 50), (10.0, 40.0, 1), (0.5, 0, 120)])
def test_steps_for_budget_fills_the_budget_after_two_evaluations(step_s, eval_s, expected):
    assert training.steps_for_budget(60, step_s, eval_s) == expected


def test_step_count_sets_what_depends_on_it_unless_given():
    quick = training.PROFILE_SETTINGS["quick"]
    s = training.with_step_count(dict(quick), 248)
    assert (s["max_steps"], s["eval_interval"], s["checkpoint_interval"], s["warmup_steps"]) == (248, 124, 124, 24)
    s = training.with_step_count(dict(quick, warmup_steps=3), 248)
    assert s["warmup_steps"] == 3
    assert training.with_step_count(dict(quick), 1)["warmup_steps"] == 0


def test_timing_a_step_leaves_the_model_and_the_random_numbers_untouched():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = torch.randint(0, 64, (4, 16))
    rng = torch.get_rng_state()
    step_s, eval_s = training.time_step_and_evaluation(model, batch, torch.bfloat16)
    assert step_s > 0 and eval_s > 0
    assert torch.equal(torch.get_rng_state(), rng), "dropout in the timed copy must not shift the run's random numbers"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())


def test_step_budget_is_measured_once_and_kept_for_a_resumed_run(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    settings = dict(training.training_settings("1M", "quick"), block_size=16, batch_size=4, micro_batch_size=2,
                    time_budget_s=5)
    saved = tmp_path / "training" / "step_budget.json"
    budget = training.measure_step_budget(model, torch.randint(0, 64, (4, 16)), settings, [100, 30], None, saved)
    assert budget["max_steps"] == training.steps_for_budget(5 - budget["measure_s"], budget["step_s"],
                                                            budget["eval_s"])
    assert training.read_json(saved) == budget
    training.atomic_write_json(saved, dict(budget, max_steps=7))  # as an interrupted run left it
    assert training.measure_step_budget(model, torch.randint(0, 64, (4, 16)), settings, [100], None, saved)[
        "max_steps"] == 7
    again = training.measure_step_budget(model, torch.randint(0, 64, (4, 16)), settings, [100], None, saved, force=True)
    assert again["max_steps"] != 7 or again["step_s"] != budget["step_s"]  # measured anew


def test_when_no_checkpoint_loads_the_message_says_what_to_do(tmp_path):
    class DamagedFiles:
        def load_state(self, path):
            raise RuntimeError("damaged")

    assert training.load_latest_checkpoint(DamagedFiles(), tmp_path) is None  # nothing saved yet: start afresh
    for step in (2, 4):
        (tmp_path / f"step_{step:06d}").mkdir()
        training.atomic_write_json(tmp_path / f"step_{step:06d}" / "trainer_state.json", {"state": {}})
    notes = []
    with pytest.raises(RuntimeError, match="Delete that folder to start this size again, or run with force=True"):
        training.load_latest_checkpoint(DamagedFiles(), tmp_path, on_note=notes.append)
    assert [note.split()[5] for note in notes] == ["step_000004", "step_000002"]  # newest first


def test_a_damaged_json_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"best_val_bpb": 1.93', encoding="utf-8")  # cut short
    with pytest.raises(ValueError, match=r"metrics.json is damaged: it is not valid JSON .* Delete it and run again"):
        training.read_json(path)


def _full(**overrides) -> dict:
    return training.training_settings("1M", "full", **overrides)


def test_learning_rate_warms_up_then_follows_the_cosine_to_zero():
    s = _full(schedule="cosine", warmup_steps=10, max_steps=110, lr=1e-3)
    assert training.learning_rate(5, s) == pytest.approx(5e-4)  # half-way through the warm-up
    assert training.learning_rate(10, s) == pytest.approx(1e-3)
    assert training.learning_rate(60, s) == pytest.approx(5e-4)  # half-way through the cosine
    assert training.learning_rate(110, s) == pytest.approx(0.0, abs=1e-12)


def test_plateau_schedule_holds_the_peak_then_decays_linearly_from_where_validation_stalled():
    s = _full(schedule="plateau", warmup_steps=10, lr=1e-3, decay_fraction=0.5)
    assert training.learning_rate(500, s) == pytest.approx(1e-3)  # no stall yet: the peak, however long
    assert training.decay_steps(s, decay_start=200) == 100
    assert training.learning_rate(250, s, decay_start=200) == pytest.approx(5e-4)
    assert training.learning_rate(300, s, decay_start=200) == 0.0
    assert training.learning_rate(350, s, decay_start=200) == 0.0


@pytest.mark.parametrize("override, message", [
    ({"schedule": "linear"}, "schedule='linear'"),
    ({"schedule": "plateau", "decay_fraction": 1.5}, "decay_fraction"),
    ({"schedule": "plateau", "decay_patience": 0}, "decay_patience"),
    ({"ema_decay": 1.0}, "ema_decay"),
    ({"weight_decay": -0.1}, "weight_decay"),
])
def test_bad_recipe_settings_are_refused_with_a_reason(override, message):
    with pytest.raises(ValueError, match=message):
        _full(**override)


def test_the_full_profile_recipe_is_the_one_the_study_chose():
    """results/ablation-gpu/README.md documents these values: change both together."""
    s = _full()
    assert (s["schedule"], s["ema_decay"], s["weight_decay"]) == ("plateau", 0.99, 0.5)
    finetune = training.training_settings("1M", "full", finetune=True)
    assert (finetune["ema_decay"], finetune["weight_decay"]) == (0.0, 0.1)  # the study trained from scratch


def test_weight_average_moves_towards_the_weights_and_swaps_in_and_back():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average = training.WeightAverage(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(5.0)
    average.update(model)  # 0.75 * 1 + 0.25 * 5
    assert torch.allclose(average.weights["weight"], torch.full((1, 2), 2.0))
    with average.swapped_in(model):
        assert torch.allclose(model.weight, torch.full((1, 2), 2.0))
    assert torch.allclose(model.weight, torch.full((1, 2), 5.0))  # the live weights are back
    restored = training.WeightAverage(model, decay=0.75)
    restored.load_state_dict(average.state_dict())
    assert torch.equal(restored.weights["weight"], average.weights["weight"])


def test_a_step_in_micro_batches_updates_the_weights_like_one_whole_batch():
    """Gradient accumulation by hand: each micro-batch's loss divided by their number."""
    from accelerate import Accelerator
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    batch = torch.randint(0, 64, (8, 16), generator=torch.Generator().manual_seed(0))
    weights = []
    for micro_batch_size in (8, 2):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config)
        initial = model.transformer.wte.weight.detach().clone()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        accelerator = Accelerator(cpu=True)
        model, optimizer = accelerator.prepare(model, optimizer)
        loss = training.train_step(accelerator, model, optimizer, batch, micro_batch_size, lr=0.1, grad_clip=1e9)
        weights.append((loss, [p.detach().clone() for p in model.parameters()]))
    (whole_loss, whole), (micro_loss, micro) = weights
    assert micro_loss == pytest.approx(whole_loss, rel=1e-5)
    for a, b in zip(whole, micro, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(whole[0], initial)  # it did take a step


def test_evaluations_and_stops_come_when_they_should():
    s = _full(schedule="plateau", eval_interval=10, max_steps=3000, patience=10, decay_fraction=0.3)
    assert [step for step in range(1, 31) if training.evaluation_due(step, s)] == [10, 20, 30]
    assert training.evaluation_due(3000, dict(s, eval_interval=7))  # the last step is always scored
    # A decay begun at step 200 lasts 60 steps: the run is scored and stops at 260, between evaluations.
    assert training.evaluation_due(260, dict(s, eval_interval=7), decay_start=200)
    state = {"evals_without_improvement": 3, "decay_start": 200}
    assert training.stop_reason(250, s, state) is None
    assert training.stop_reason(260, s, state) == "learning rate decayed to zero (decay from step 200)"
    assert training.stop_reason(250, s, dict(state, evals_without_improvement=10)).startswith("early stopping")
    assert not training.out_of_time(dict(s, time_budget_s=None), 1e9)
    assert training.out_of_time(dict(s, time_budget_s=60), 60.5)
    # where timing the step took 10 s of the minute, the loop has 50 s left
    measured = training.with_step_count(dict(s, time_budget_s=60), 100, measure_s=10.0)
    assert measured["train_budget_s"] == 50.0
    assert training.out_of_time(measured, 50.5) and not training.out_of_time(measured, 49.5)
    assert "train_budget_s" not in training.with_step_count(dict(s, time_budget_s=None), 100, 10.0)


def test_the_training_score_samples_the_whole_text_in_whole_windows():
    ids = torch.arange(70_000)
    sample = training.spread_sample(ids, 6_000, block_size=256)
    assert abs(len(sample) - 6_000) <= 255 and len(set(sample.tolist())) == len(sample)  # no token twice
    assert sample[0] == 0 and sample[-1] == 69_999  # from the first story to the last
    pieces = sample.split(len(sample) // 8)
    assert len(pieces) == 8 and all(len(p) % 255 == 0 for p in pieces)  # whole scoring windows
    assert torch.equal(training.spread_sample(ids[:100], 6_000, 256), ids[:100])  # a short text: all of it


def test_a_notebook_opened_with_no_trained_size_says_how_long_then_trains_one(tmp_path, monkeypatch, capsys):
    """04, 05 and 08 opened alone: no model anywhere, so notebook 03 runs first, after an estimate."""
    from junglegpt import runs
    from junglegpt.paths import OutputDirs

    monkeypatch.setattr(runs, "model_problem", lambda folder: None)  # the stand-in trains write metrics only

    out = OutputDirs(tmp_path / "out").make()
    ran = []

    def fake_execute(out_, name, label, parameters):
        said_before = capsys.readouterr().out
        ran.append((name, parameters, said_before))
        (out_.model(parameters["model_size"])).mkdir(parents=True)
        (out_.model(parameters["model_size"]) / "metrics.json").write_text("{}")

    monkeypatch.setattr(runs, "execute", fake_execute)
    assert runs.ensure_trained(out, "smoke", "1M,3M") == ["1M", "3M"]
    assert [(name, p["model_size"], p["profile"]) for name, p, _ in ran] == [("03_train", "1M", "smoke"),
                                                                            ("03_train", "3M", "smoke")]
    before_training = ran[0][2]
    assert "No trained model in" in before_training and "which will take about" in before_training
    assert "1M: about" in before_training and "s a step measured here, 3 steps" in before_training
    ran.clear()
    assert runs.ensure_trained(out, "smoke", "all") == ["1M", "3M"]  # trained ones exist: nothing to do
    assert ran == []


def test_with_train_if_none_empty_a_notebook_stops_and_says_what_to_do(tmp_path):
    from junglegpt import runs
    from junglegpt.paths import OutputDirs

    with pytest.raises(FileNotFoundError, match="run 03_train.ipynb first .*train_if_none='1M'"):
        runs.ensure_trained(OutputDirs(tmp_path).make(), "smoke", "")


def test_the_estimate_grows_with_the_model_and_the_quick_profile_follows_its_budget():
    small, _ = training.estimate_seconds("1M", "smoke", timed_steps=1)  # smoke: small batches, quick to time
    large, _ = training.estimate_seconds("100M", "smoke", timed_steps=1)
    assert large > small > training.STARTUP_S
    _, how = training.estimate_seconds("1M", "full", timed_steps=1)
    assert "3000 steps at most" in how
    quick, how = training.estimate_seconds("100M", "quick")
    budget = training.PROFILE_SETTINGS["quick"]["time_budget_s"]
    assert quick == budget * 1.25 + training.STARTUP_S and "time budget" in how


@pytest.mark.parametrize("platform", ["KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG"])
def test_on_kaggle_or_colab_without_a_gpu_the_notebook_says_so_and_runs_quick(monkeypatch, capsys, platform):
    from junglegpt.profiles import resolve_profile

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(platform, "1")
    assert resolve_profile("auto") == "quick"
    said = capsys.readouterr().out
    assert "No GPU in this session, so the quick profile" in said
    assert "T4" in said and ("Settings > Accelerator" in said) == (platform == "KAGGLE_KERNEL_RUN_TYPE")


def test_torch_gets_a_thread_per_physical_core_unless_omp_num_threads_says_otherwise(monkeypatch):
    from junglegpt import environment

    before = torch.get_num_threads()
    monkeypatch.setattr(environment, "physical_cores", lambda: 3)
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert training.use_physical_cores() == "3 threads (3 physical cores)" and torch.get_num_threads() == 3
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # ./run_tests.sh: its processes share the cores
        assert training.use_physical_cores() == "1 thread (OMP_NUM_THREADS=1)" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_measuring_the_step_is_paid_from_the_budget(tmp_path, monkeypatch):
    """The quick profile's minute covers timing the step too: a slow measurement (a big size on a
    CPU) leaves fewer steps, instead of the notebook running that much past its minute."""
    def slow_timing(model, batch, autocast_dtype, grad_clip):
        time.sleep(1.0)
        return 0.1, 0.01

    monkeypatch.setattr(training, "time_step_and_evaluation", slow_timing)
    settings = dict(training.training_settings("1M", "quick"), block_size=16, batch_size=4, micro_batch_size=4,
                    time_budget_s=5)
    budget = training.measure_step_budget(None, torch.zeros(4, 16, dtype=torch.long), settings, [15],
                                          None, tmp_path / "step_budget.json")
    assert 1.0 <= budget["measure_s"] < 3.0
    assert budget["max_steps"] == int((5 - budget["measure_s"] - 2 * 0.01) / 0.1) < 40  # 49 if it were free


def test_evaluation_timed_on_a_quarter_of_the_rows_is_scaled_to_the_whole_batch(monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    rows_seen = []
    forward = model.forward

    def counting_forward(*args, **kwargs):
        rows_seen.append(len(kwargs["input_ids"]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(training, "_seconds", lambda fn: (fn(), 0.5)[1])
    monkeypatch.setattr(type(model), "__deepcopy__", lambda self, memo: model, raising=False)
    monkeypatch.setattr(model, "forward", counting_forward)
    step_s, eval_s = training.time_step_and_evaluation(model, torch.randint(0, 64, (8, 16)), None)
    assert rows_seen[-1] == 2 and eval_s == 0.5 * 4  # two rows of eight, timed, times four


@pytest.mark.parametrize(("seconds", "steps"), [(6.0, 1), (0.3, 1 + 5)])
def test_a_slow_step_is_timed_once_with_its_warm_up_a_quick_one_after_it(monkeypatch, seconds, steps):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=0, eos_token_id=0))
    calls = []

    def fake_seconds(fn):
        calls.append(fn)
        return seconds

    monkeypatch.setattr(training, "_seconds", fake_seconds)
    step_s, _ = training.time_step_and_evaluation(model, torch.randint(0, 64, (4, 16)), None)
    assert step_s == seconds and len(calls) == steps + 1  # the steps, then one evaluation pass


# --------------------------------------------------------------------------------------------
# Notebook 03's plumbing in one call (training.prepare_run), and what it leaves quiet
# --------------------------------------------------------------------------------------------


def _notebook_03_defaults() -> dict:
    """The values of 03's parameters cell, as the notebook's globals hold them before any override."""
    import nbformat

    from junglegpt.paths import NOTEBOOKS_DIR

    nb = nbformat.read(NOTEBOOKS_DIR / "03_train.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    names = {}
    exec(cell.source, {}, names)
    return names


def _inputs(root):
    """OUT with what notebooks 01 and 02 leave (a split, a tokenizer that loads), so that
    prepare_run runs no notebook."""
    from junglegpt.paths import OutputDirs

    from .helpers import save_tiny_gpt2

    out = OutputDirs(root)
    out.data.mkdir(parents=True)
    text = "Now Rann the Kite brings home the night that Mang the Bat sets free.\n\n" * 40
    out.train_txt.write_text(text, encoding="utf-8")
    out.val_txt.write_text(text[:500], encoding="utf-8")
    save_tiny_gpt2(out.tokenizer, text, vocab_size=300, context=64)
    return out


def test_prepare_run_reads_the_parameters_and_works_out_the_settings_the_folder_and_the_inputs(tmp_path, capsys):
    out = _inputs(tmp_path)
    parameters = {**_notebook_03_defaults(), "out_dir": str(out.root), "profile": "smoke", "model_size": "3m",
                  "seed": 7.0, "lr": 1e-3, "unrelated_global": object()}
    run = training.prepare_run(parameters)
    assert run.size.name == "3M" and run.profile == "smoke" and run.seed == 7 and isinstance(run.seed, int)
    assert run.settings == training.training_settings("3m", "smoke", lr=1e-3) and run.settings["lr"] == 1e-3
    assert run.sources["lr"] == "override" and run.sources["dropout"] == "size 3M (DROPOUT)"
    assert (run.run_name, run.model_dir, run.state_dir) == ("3M", out.models / "3M", out.models / "3M" / "training")
    assert (run.tokenizer_dir, run.train_path, run.val_path) == (out.tokenizer, out.train_txt, out.val_txt)
    assert run.requested_precision == "auto"
    assert f"3M, smoke profile, seed 7; its folder: {out.models / '3M'}" in capsys.readouterr().out
    assert not out.models.exists()  # named, not made: the run makes it

    # notebook 06: a pretrained model, which brings its tokenizer; notebook 07: another training text
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("more text\n", encoding="utf-8")
    tuned = training.prepare_run({**parameters, "init_from": "hub-user/gpt2/", "train_file": str(corpus)})
    assert tuned.size is None and tuned.run_name == "finetuned/gpt2" and tuned.tokenizer_dir == "hub-user/gpt2/"
    assert tuned.settings == training.training_settings(None, "smoke", finetune=True, lr=1e-3)
    assert tuned.train_path == corpus


@pytest.mark.parametrize("change, error, message", [
    ({"model_size": "5M"}, ValueError, "1M, 3M, 7M, 15M, 22M, 37M, 59M, 100M"),
    ({"seed": -1}, ValueError, "seed=-1"),
    ({"precision": "fp8"}, ValueError, "precision='fp8'"),
    ({"lr": -0.001}, ValueError, "learning rate"),
    ({"run_name": "../elsewhere"}, ValueError, "a run name is a folder inside OUT/models"),
])
def test_prepare_run_refuses_a_bad_parameter_before_looking_for_any_input(tmp_path, change, error, message):
    from junglegpt.paths import OutputDirs

    parameters = {**_notebook_03_defaults(), "out_dir": str(tmp_path / "out"), "profile": "smoke", **change}
    with pytest.raises(error, match=message):
        training.prepare_run(parameters)  # no split, no tokenizer: it would run notebooks 01 and 02 next
    out = OutputDirs(tmp_path / "out")
    assert not (out.train_txt.exists() or out.tokenizer.exists() or out.executed.exists() or out.models.exists())


def test_prepare_run_names_a_parameter_the_notebook_lacks():
    parameters = _notebook_03_defaults()
    del parameters["ema_decay"]
    with pytest.raises(KeyError, match="does not set ema_decay"):
        training.prepare_run(parameters)


def test_transformers_note_on_gpt2s_default_loss_is_silenced_and_others_are_not():
    """transformers 5 finds no loss type in the name "GPT2LMHeadModel" and says so at the first
    forward pass with labels, then uses the causal-LM loss that is GPT-2's anyway: junglegpt.training
    drops that note (notebook 03 printed it before its first batch's loss), and no other."""
    import logging

    from transformers.utils import logging as transformers_logging

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    verbosity = transformers_logging.get_verbosity()  # another test of this process may have quieted it
    transformers_logging.set_verbosity_warning()
    try:
        logging.Logger.warning_once.cache_clear()  # transformers says each note once per process
        model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=16,
                                           bos_token_id=0, eos_token_id=0)).eval()
        ids = torch.randint(0, 64, (2, 8))
        expected = torch.nn.functional.cross_entropy(model(input_ids=ids).logits[:, :-1].reshape(-1, 64),
                                                     ids[:, 1:].reshape(-1))
        assert model(input_ids=ids, labels=ids).loss.item() == pytest.approx(expected.item(), rel=1e-5)
        model.loss_type = "NoSuchLoss"  # a loss type that is set and unknown: still reported
        model(input_ids=ids, labels=ids)
    finally:
        logger.removeHandler(handler)
        transformers_logging.set_verbosity(verbosity)
    assert not [m for m in said if "loss_type=None" in m], said
    assert [m for m in said if "loss_type=NoSuchLoss" in m]
