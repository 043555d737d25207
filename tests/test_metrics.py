"""Losses and bits per byte, checked against independent recomputations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt.metrics import bits_per_byte, scoring_windows, text_loss


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2)
    return GPT2LMHeadModel(config).eval()


def test_model_loss_with_labels_equal_to_inputs_is_next_token_loss(tiny_model):
    """labels=input_ids is right because the model shifts them itself: position t is scored on token t+1."""
    x = torch.randint(1, 50, (3, 12))
    loss = tiny_model(input_ids=x, labels=x).loss
    logits = tiny_model(input_ids=x).logits
    next_token = F.cross_entropy(logits[:, :-1].reshape(-1, 50), x[:, 1:].reshape(-1))
    same_token = F.cross_entropy(logits.reshape(-1, 50), x.reshape(-1))
    after_next = F.cross_entropy(logits[:, :-2].reshape(-1, 50), x[:, 2:].reshape(-1))
    assert torch.allclose(loss, next_token)
    assert not torch.allclose(loss, same_token) and not torch.allclose(loss, after_next)


def test_scoring_windows_score_every_token_once():
    ids = torch.arange(10, 33)  # 23 tokens
    inputs, targets = scoring_windows(ids, block_size=8, start_id=0)
    assert inputs.shape == (4, 8)  # 23 tokens in windows of 7
    assert (inputs[:, 0] == 0).all()
    scored = targets[targets != -100]
    assert scored.tolist() == ids.tolist()
    # each target is the token that follows its input position in the original text
    assert (targets[0, :-1] == inputs[0, 1:]).all()


def test_text_loss_matches_a_token_by_token_recomputation(tiny_model):
    torch.manual_seed(1)
    ids = torch.randint(1, 50, (29,))
    block = 8
    result = text_loss(tiny_model, ids, n_bytes=100, block_size=block, start_id=0, batch_size=3)
    # Independently: each token is predicted from <start> + the earlier tokens of its window of 7.
    expected = 0.0
    for i, token in enumerate(ids.tolist()):
        window_start = (i // (block - 1)) * (block - 1)
        context = torch.tensor([[0, *ids[window_start:i].tolist()]])
        log_probs = torch.log_softmax(tiny_model(input_ids=context).logits[0, -1], dim=-1)
        expected -= log_probs[token].item()
    assert result.tokens == 29
    assert result.nats == pytest.approx(expected, rel=1e-5)
    assert result.bits_per_byte == pytest.approx(expected / math.log(2) / 100, rel=1e-5)


def test_a_uniform_model_scores_log_vocab_per_token():
    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask=None):
            return type("Out", (), {"logits": torch.zeros(*input_ids.shape, 256)})()

    ids = torch.randint(0, 256, (1000,))
    result = text_loss(Uniform(), ids, n_bytes=1000, block_size=64, start_id=0)
    assert result.nats_per_token == pytest.approx(math.log(256))
    assert result.bits_per_byte == pytest.approx(8.0)  # one byte per token, uniform over 256: 8 bits


def test_bits_per_byte_formula():
    assert bits_per_byte(math.log(2) * 800, 100) == pytest.approx(8.0)


def test_score_text_scores_the_text_or_its_first_tokens_and_counts_their_bytes(smoke_inputs):
    from transformers import AutoTokenizer

    from junglegpt.metrics import score_text

    tokenizer = AutoTokenizer.from_pretrained(smoke_inputs.tokenizer)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2))
    text = "Now this is the Law of the Jungle, as old and as true as the sky."
    ids = torch.tensor(tokenizer.encode(text))
    whole = score_text(model, tokenizer, text, block_size=8)
    assert whole == text_loss(model, ids, len(text.encode()), block_size=8, start_id=tokenizer.eos_token_id)
    prefix = score_text(model, tokenizer, text, block_size=8, max_tokens=5)
    assert prefix.tokens == 5 and prefix.bytes == len(tokenizer.decode(ids[:5]).encode())
