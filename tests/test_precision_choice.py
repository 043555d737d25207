"""Notebook 03's cheap measurements (issue 34): "auto" precision is timed once per machine, stops
as soon as the winner is clear, and still picks the faster; the run's identity still changes with
everything a trained model depends on. Timings are faked: no test reads the clock."""

from __future__ import annotations

import pytest
import torch

from junglegpt import training


def fake_steps(fp32: list[float], bf16: list[float]):
    """A `step_seconds` for `alternate_until_clear` that answers from two lists, and logs its calls."""
    answers = {"fp32": iter(fp32), "bf16": iter(bf16)}
    calls = []

    def step_seconds(dtype):
        calls.append(dtype)
        return next(answers[dtype])

    return step_seconds, calls


@pytest.mark.parametrize("fp32, bf16, expected, pairs", [
    ([1.0, 9, 9], [1 / 2.10, 9, 9], "bf16", 1),  # AMX: clear after one pair
    ([1.0, 9, 9], [1 / 2.32, 9, 9], "bf16", 1),  # AMD Zen 4
    ([1.0, 9, 9], [1 / 0.77, 9, 9], "fp32", 1),  # a Xeon with avx512_bf16 and no AMX: clearly slower
    ([1.0, 1.0, 1.0], [1 / 1.15, 1 / 1.10, 1 / 1.12], "bf16", 3),  # close: the median of three, bf16 by 12%
    ([1.0, 1.0, 1.0], [1 / 1.20, 1 / 1.02, 1 / 0.98], "fp32", 3),  # one lucky bf16 step: the median says a tie
    ([1.0, 1.0, 1.0], [1 / 0.90, 1 / 0.94, 1 / 0.88], "fp32", 3),  # slower, not by much
])
def test_cpu_timing_stops_once_the_winner_is_clear_and_picks_the_faster(fp32, bf16, expected, pairs):
    step_seconds, calls = fake_steps(fp32, bf16)
    fp32_s, bf16_s = training.alternate_until_clear(step_seconds, rounds=3)
    assert calls == ["fp32", "bf16"] * pairs  # alternating, so that noise hits both alike
    assert training.decide_cpu_precision(fp32_s, bf16_s)[0] == expected


def test_without_a_clear_margin_every_round_is_timed():
    step_seconds, calls = fake_steps([1.0] * 3, [0.1] * 3)
    assert training.alternate_until_clear(step_seconds, rounds=3, clear_speed_up=None) == (1.0, 0.1)
    assert len(calls) == 6


def test_a_clear_winner_is_decided_on_a_warm_up_and_one_pair_of_real_steps(monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    calls = []

    def fake_seconds(step):  # runs the real step, says fp32 took 1 s and bf16 0.5 s
        step()
        calls.append(1)
        return 1.0 if len(calls) % 2 else 0.5

    monkeypatch.setattr(training, "_seconds", fake_seconds)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    assert training.time_cpu_precisions(model, torch.randint(0, 64, (2, 16))) == (1.0, 0.5)
    assert len(calls) == 2


@pytest.mark.parametrize("size, timed", [("1M", "1M"), ("7M", "7M"), ("15M", "15M"), ("37M", "15M"),
                                         ("100M", "15M"), (None, "15M")])
def test_auto_times_the_run_s_own_size_only_where_it_is_small(size, timed):
    assert training.precision_timing_size(size) == timed


@pytest.fixture
def cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "cpu_supports_bf16", lambda: True)


@pytest.mark.parametrize("fp32_s, bf16_s, expected", [(1.0, 0.5, "bf16"), (1.0, 1.3, "fp32"), (1.0, 0.99, "fp32")])
def test_auto_is_measured_once_per_machine_and_every_size_reuses_it(monkeypatch, tmp_path, cpu_with_bf16,
                                                                     fp32_s, bf16_s, expected):
    measured = []

    def fake_measure(size_name, batch_shape, grad_clip=1.0):
        measured.append(size_name)
        return {"fp32_step_s": fp32_s, "bf16_step_s": bf16_s, "measured_on": f"{size_name}, 16 x 128 tokens"}

    monkeypatch.setattr(training, "measure_cpu_precisions", fake_measure)
    cache = tmp_path / "precision_cache.json"
    choices = [training.precision_for_run("auto", cache, size, (16, 128)) for size in ("100M", "1M", "15M", None)]
    assert measured == ["15M"]  # the first run measured, on 15M rather than its own 100M; the others reused it
    assert {c["precision"] for c in choices} == {expected}
    assert all(c == choices[0] for c in choices) and choices[0]["measured_on"] == "15M, 16 x 128 tokens"
    training.precision_for_run("auto", cache, "1M", (32, 256))  # another batch shape (the full profile)
    assert measured == ["15M", "1M"]
    assert training.precision_for_run("fp32", cache, "1M", (8, 64))["precision"] == "fp32"  # requested: not timed
    assert measured == ["15M", "1M"]


def test_the_cache_key_names_the_machine_and_the_batch_but_not_the_size():
    key = training.precision_cache_key((16, 128))
    assert str(torch.get_num_threads()) + " thread" in key and torch.__version__ in key and "(16, 128)" in key
    assert key != training.precision_cache_key((32, 256))


def test_the_timed_model_is_the_size_s_and_leaves_the_random_numbers_alone():
    state = torch.random.get_rng_state()
    model = training.untrained_model("1M")
    assert torch.random.get_rng_state().equal(state)
    assert (model.config.n_layer, model.config.n_embd) == (5, 128)
    assert all(a.equal(b) for a, b in zip(model.parameters(), training.untrained_model("1M").parameters(), strict=True))


# ------------------------------------------------------------------------------------------------
# The run's identity: cheap, and still different whenever the trained model would be
# ------------------------------------------------------------------------------------------------

def _signature(tmp_path, **changes):
    train, tokenizer = tmp_path / "train.txt", tmp_path / "tokenizer.json"
    for path in (train, tokenizer):
        if not path.exists():
            path.write_text(f"the text of {path.name}")
    args = dict(model_size="1M", profile="quick", seed=1894, precision="bf16",
                requested_settings=training.training_settings("1M", "quick"), vocab_size=2048,
                train_path=train, tokenizer_file=tokenizer, init_from=None, train_file=None)
    args.update(changes)
    return training.run_signature(**args)


@pytest.mark.parametrize("change", [
    dict(model_size="3M"), dict(profile="full"), dict(seed=1895), dict(precision="fp32"), dict(vocab_size=4096),
    dict(requested_settings=training.training_settings("1M", "quick", lr=1e-3)),
    dict(init_from="gpt2", tokenizer_file=None), dict(train_file="more_data_train.txt"),
])
def test_the_run_s_identity_changes_with_every_setting_it_depends_on(tmp_path, change):
    assert _signature(tmp_path) == _signature(tmp_path)
    assert _signature(tmp_path, **change) != _signature(tmp_path)


@pytest.mark.parametrize("edited", ["train.txt", "tokenizer.json"])
def test_the_run_s_identity_changes_with_the_training_text_and_the_tokenizer(tmp_path, edited):
    before = _signature(tmp_path)
    (tmp_path / edited).write_text("another text")
    assert _signature(tmp_path) != before


def test_a_checkpoint_of_another_run_is_refused_not_resumed(tmp_path):
    class Accelerator:
        def load_state(self, path):
            pass

    model_dir = tmp_path / "models" / "1M"
    settings = training.training_settings("1M", "smoke")
    another_run = _signature(tmp_path, seed=1895)
    saved = {"signature": another_run, "state": dict(training.new_state(4), step=2, best_val_loss=5.0)}
    training.atomic_write_json(model_dir / "training" / "step_000002" / "trainer_state.json", saved)
    with pytest.raises(RuntimeError, match="made with other settings; delete .* or run with force=True"):
        training.start_or_resume(Accelerator(), model_dir, "1M", _signature(tmp_path), settings)
    state, _, finished = training.start_or_resume(Accelerator(), model_dir, "1M", saved["signature"], settings)
    assert not finished and state == saved["state"]  # the same run resumes


def test_sizes_that_start_together_measure_once_and_train_in_the_same_precision(monkeypatch, tmp_path,
                                                                                cpu_with_bf16):
    """`./run_all.sh --parallel 2` starts 1M and 3M at once. Each measured, a close call came out
    bf16 for one and fp32 for the other, the cache kept one verdict, and the next run (07, training
    3M again with the same settings) retrained 3M as "trained with other settings (precision)".
    The second to ask now waits for the first's measurement."""
    import threading
    import time

    verdicts = iter([(1.0, 0.9), (1.0, 1.1)])  # bf16 for the first to measure, fp32 for a second
    measured = []

    def slow_measure(size_name, batch_shape, grad_clip=1.0):
        measured.append(size_name)
        time.sleep(0.3)  # long enough for the other thread to arrive
        fp32_s, bf16_s = next(verdicts)
        return {"fp32_step_s": fp32_s, "bf16_step_s": bf16_s, "measured_on": size_name}

    monkeypatch.setattr(training, "measure_cpu_precisions", slow_measure)
    cache, start, choices = tmp_path / "precision_cache.json", threading.Barrier(2), {}

    def train(size):
        start.wait()
        choices[size] = training.precision_for_run("auto", cache, size, (4, 32))["precision"]

    threads = [threading.Thread(target=train, args=(size,)) for size in ("1M", "3M")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(measured) == 1 and choices == {"1M": "bf16", "3M": "bf16"}
