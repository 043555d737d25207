"""Settings are checked before any work; an out-of-memory step is retried with a smaller micro-batch."""

from __future__ import annotations

import pytest
import torch

from junglegpt import training


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


@pytest.mark.parametrize("cuda, capability, expected", [(False, None, "no"), (True, (7, 5), "fp16"),
                                                         (True, (8, 0), "bf16"), (True, (9, 0), "bf16")])
def test_mixed_precision_fp16_on_a_t4_bf16_on_newer_gpus(monkeypatch, cuda, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert training.mixed_precision() == expected
