"""Ensembles of sizes: the average of the models' probabilities, with weights fitted on other text."""

from __future__ import annotations

import math

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt import dynamic, ensemble


def _complementary():
    """Two models, each sure on the half of the tokens where the other is not."""
    good, bad = torch.full((50,), 0.2), torch.full((50,), 3.0)
    return torch.stack([torch.cat([good, bad]), torch.cat([bad, good])])


def test_models_that_agree_make_an_ensemble_that_scores_the_same_whatever_the_weights():
    nats = torch.rand(1, 64) * 4
    both = torch.cat([nats, nats])
    for weights in (torch.tensor([0.5, 0.5]), torch.tensor([0.1, 0.9])):
        assert math.isclose(ensemble.mixture_nats(both, weights), nats.sum().item(), rel_tol=1e-6)


def test_models_that_err_on_different_tokens_make_an_ensemble_better_than_either():
    nats = _complementary()
    weights = ensemble.fit_weights(nats)
    assert torch.allclose(weights, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6)
    assert ensemble.mixture_nats(nats, weights) < 0.7 * nats.sum(dim=1).min().item()


def test_fitted_weights_are_never_worse_than_any_single_model_or_the_plain_average():
    torch.manual_seed(0)
    nats = torch.rand(4, 300) * 6 + torch.tensor([[0.0], [0.3], [1.0], [2.0]])
    fitted = ensemble.mixture_nats(nats, ensemble.fit_weights(nats))
    for single in range(4):
        assert fitted <= nats[single].sum().item() + 1e-6
    assert fitted <= ensemble.mixture_nats(nats, torch.full((4,), 0.25)) + 1e-6


def test_a_useless_model_gets_no_weight():
    useful = torch.rand(200) * 2
    weights = ensemble.fit_weights(torch.stack([useful, torch.full((200,), 9.0)]))
    assert weights[1] < 1e-3


def test_the_per_token_scores_add_up_to_the_dynamic_loss_and_come_before_learning():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=64, n_embd=16, n_layer=1, n_head=2)).eval()
    ids = torch.randint(1, 40, (90,))
    for lr in (0.0, 0.1):
        chunks = dynamic.token_nats(model, ids, 0, lr, chunk=32, context=31)
        assert sum(len(c) for c in chunks) == len(ids)
        total = dynamic.dynamic_text_loss(model, ids, 90, 0, lr, chunk=32, context=31).nats
        assert math.isclose(sum(c.sum().item() for c in chunks), total, rel_tol=1e-9)
    frozen, learning = (dynamic.token_nats(model, ids, 0, lr, chunk=32, context=31) for lr in (0.0, 0.1))
    assert torch.allclose(frozen[0], learning[0])  # the first chunk: scored before any step
    assert not torch.allclose(frozen[1], learning[1])  # later ones: after learning from earlier chunks
