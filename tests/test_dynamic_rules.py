"""Dynamic evaluation's other update rules (`benchmarks/dynamic_rules.py`): Adam and Krause et al.'s
RMS-normalised step with decay obey the same no-peeking rule as notebook 04's SGD step, and
`RMSDecay` does what its docstring says."""

from __future__ import annotations

import functools

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt import dynamic


def _tiny_model():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=64, n_embd=16, n_layer=1, n_head=2)).eval()


def _ids():
    torch.manual_seed(1)
    return torch.randint(1, 40, (90,))


def _rms_decay(model, ids):
    return functools.partial(dynamic.RMSDecay, rms=dynamic.gradient_rms(model, ids, 0, chunk=32, context=31))


@pytest.mark.parametrize("rule", ["adam", "rms-decay"])
def test_every_rule_scores_a_chunk_before_learning_from_it(rule):
    model, ids = _tiny_model(), _ids()
    optimizer, lr = (torch.optim.Adam, 1e-2) if rule == "adam" else (_rms_decay(model, ids), 1e-2)
    frozen = dynamic.token_nats(model, ids, 0, 0.0, chunk=32, context=31)
    learning = dynamic.token_nats(model, ids, 0, lr, chunk=32, context=31, optimizer=optimizer)
    assert torch.allclose(frozen[0], learning[0])  # the first chunk: scored by the untouched model
    assert not torch.allclose(frozen[1], learning[1])  # the next: by a model that learned the first


def test_rms_decay_with_unit_scales_and_no_decay_is_a_plain_sgd_step():
    model, ids = _tiny_model(), _ids()
    unit = functools.partial(dynamic.RMSDecay, rms=[torch.ones_like(p) for p in model.parameters()], decay=0.0)
    sgd, rms = (dynamic.token_nats(model, ids, 0, 0.1, chunk=32, context=31, optimizer=opt)
                for opt in (torch.optim.SGD, unit))
    for a, b in zip(sgd, rms, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_full_decay_returns_to_the_trained_weights_after_every_step():
    model, ids = _tiny_model(), _ids()
    snap_back = functools.partial(dynamic.RMSDecay, rms=dynamic.gradient_rms(model, ids, 0, chunk=32, context=31),
                                  decay=1.0)
    frozen = dynamic.token_nats(model, ids, 0, 0.0, chunk=32, context=31)
    learning = dynamic.token_nats(model, ids, 0, 1e-2, chunk=32, context=31, optimizer=snap_back)
    for a, b in zip(frozen, learning, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_a_weight_training_never_moved_does_not_blow_up_the_step():
    """An RMS of zero (an embedding row of a token training never saw) is floored at its tensor's mean."""
    weight = torch.nn.Parameter(torch.zeros(4, 3))
    rms = torch.tensor([[0.0, 0.0, 0.0]] + [[2.0, 2.0, 2.0]] * 3)
    optimizer = dynamic.RMSDecay([weight], lr=0.1, rms=[rms], decay=0.0)
    weight.grad = torch.ones(4, 3)
    optimizer.step()
    assert torch.isfinite(weight).all()
    assert torch.allclose(weight[0], torch.full((3,), -0.1 / 1.5))  # floored at the mean, 1.5
    assert torch.allclose(weight[1], torch.full((3,), -0.1 / 2.0))


def test_a_tensor_training_never_moved_takes_plain_sgd_steps():
    weight = torch.nn.Parameter(torch.zeros(2, 3))
    optimizer = dynamic.RMSDecay([weight], lr=0.1, rms=[torch.zeros(2, 3)], decay=0.0)
    weight.grad = torch.ones(2, 3)
    optimizer.step()
    assert torch.allclose(weight, torch.full((2, 3), -0.1))


def test_rms_for_another_model_is_refused_with_a_message():
    model = _tiny_model()
    with pytest.raises(ValueError, match="gradient_rms on the same model"):
        dynamic.RMSDecay(model.parameters(), lr=0.1, rms=[torch.ones(3)])


def test_gradient_rms_has_one_tensor_per_parameter_and_leaves_the_model_alone():
    model, ids = _tiny_model(), _ids()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rms = dynamic.gradient_rms(model, ids, 0, chunk=32, context=31)
    params = list(model.parameters())
    assert [r.shape for r in rms] == [p.shape for p in params]
    assert all((r >= 0).all() and torch.isfinite(r).all() for r in rms)
    assert any((r > 0).any() for r in rms)
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in params)


def test_the_benchmark_runs_every_rule_and_picks_its_rate_from_its_grid():
    """benchmarks/dynamic_rules.py on a tiny model: every rule yields finite scores, rates from its grid."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "dynamic_rules.py"
    spec = importlib.util.spec_from_file_location("dynamic_rules", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)  # the benchmark's windows span 256 positions
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=256, n_embd=16, n_layer=1, n_head=2)).eval()
    texts = {name: torch.randint(1, 40, (n,)) for name, n in
             (("train", 300), ("last_tenth", 150), ("val", 150), ("heldout", 200))}
    for rule, (_, grid, _) in bench.RULES.items():
        row = bench.bench(model, rule, texts, 0, n_bytes=len)
        for reported in ("val", "heldout"):
            assert row[reported]["lr"] in (0.0, *grid)
            assert torch.isfinite(torch.tensor(row[reported]["bpb"]))
