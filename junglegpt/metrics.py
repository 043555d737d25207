"""Loss in nats per token and bits per byte, measured the same way in training and evaluation.

Every token of a text is scored exactly once. The text is cut into windows of `block_size - 1`
tokens, and each window is fed to the model behind one `<|endoftext|>` token, so that even a
window's first token is predicted (from the start-of-text marker alone). The sum of the negative
log-likelihoods is then the model's code length for the whole text, and

    bits per byte = total nats / ln 2 / (UTF-8 bytes of the text)

is comparable across tokenizers, and with compressors such as gzip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TextLoss:
    nats: float  # total negative log-likelihood of the text, in nats
    tokens: int  # tokens scored (every token of the text)
    bytes: int  # UTF-8 bytes of the text

    @property
    def nats_per_token(self) -> float:
        return self.nats / self.tokens

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.nats, self.bytes)


def bits_per_byte(total_nats: float, n_bytes: int) -> float:
    return total_nats / math.log(2) / n_bytes


def scoring_windows(ids: torch.Tensor, block_size: int, start_id: int, pad_id: int = 0):
    """Cut `ids` into model inputs of `block_size` tokens, each starting with `start_id`.

    Returns (inputs, targets): targets[i, j] is the token that inputs[i, j] must predict, or -100
    where there is nothing to predict (padding after the text's last token).
    """
    if block_size < 2:
        raise ValueError("block_size must be at least 2 (a start token and one token to score)")
    chunks = ids.split(block_size - 1)
    inputs = torch.full((len(chunks), block_size), pad_id, dtype=torch.long)
    targets = torch.full((len(chunks), block_size), -100, dtype=torch.long)
    for row, chunk in enumerate(chunks):
        inputs[row, 0] = start_id
        inputs[row, 1 : 1 + len(chunk)] = chunk
        targets[row, : len(chunk)] = chunk  # position j predicts the token at j + 1
    return inputs, targets


@torch.no_grad()
def text_loss(model, ids: torch.Tensor, n_bytes: int, block_size: int, start_id: int,
              batch_size: int = 16, device: torch.device | str | None = None) -> TextLoss:
    """Score every token of `ids` with `model` (a causal LM returning `.logits`)."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs, targets = scoring_windows(ids, block_size, start_id)
    total = 0.0
    for i in range(0, len(inputs), batch_size):
        x = inputs[i : i + batch_size].to(device)
        y = targets[i : i + batch_size].to(device)
        # Padding sits after the text's last token, where causal attention cannot see it from any
        # scored position, so an all-ones mask is exact (and keeps the fast attention kernel).
        logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits.float()
        nll = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100, reduction="sum")
        total += nll.item()
    model.train(was_training)
    return TextLoss(nats=total, tokens=len(ids), bytes=n_bytes)


def score_text(model, tokenizer, text: str, block_size: int, max_tokens: int | None = None, batch_size: int = 16,
               device: torch.device | str | None = None) -> TextLoss:
    """Every token of `text` scored by `model`: the one bits-per-byte scorer of the series (notebooks
    04, 06, 07). With `max_tokens`, only the text's first tokens, and the bytes they decode to."""
    ids = torch.tensor(tokenizer.encode(text, verbose=False))
    if max_tokens:  # the smoke profile scores a prefix, as notebook 03 does
        ids = ids[:max_tokens]
    n_bytes = len(tokenizer.decode(ids).encode("utf-8"))
    return text_loss(model, ids, n_bytes, block_size=block_size, start_id=tokenizer.eos_token_id,
                     batch_size=batch_size, device=device)
