"""Dynamic evaluation: score a text the way a compressor reads it, learning as it goes.

PPMd and zpaq update their statistics after every byte they code, so by its third appearance a
new character's name is cheap to them. A model scored frozen cannot do that. Dynamic evaluation
(Krause et al., 2018) gives it the same protocol: score a chunk of tokens (with the text before
it as context), *then* take an optimizer step on that chunk, then score the next one. No token is
ever scored by a model that has learned from it, so the total is still an honest code length:
`junglegpt.compress` turns it into a real file that decompresses by adapting exactly the same way.

Notebook 04 writes the idea out as a dozen-line loop; this is that loop, with the settings chosen
by a rule fixed in advance (`choose_lr`), on text that is not reported. The step is plain SGD;
`RMSDecay` is the update rule of Krause et al. (2019), which `benchmarks/dynamic_rules.py`
compares with it (and with Adam) under the same protocol.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .metrics import TextLoss

CHUNK = 128  # tokens scored, then learned from, at a time
CONTEXT = 127  # earlier tokens the model sees before each chunk: 1 + 127 + 128 = 256 positions
LR_GRID = (0.003, 0.01, 0.03, 0.1)  # plain SGD steps; the rule picks one on text that is not reported
GRAD_CLIP = 1.0


@dataclass(frozen=True)
class Window:
    """Where chunk `start:end` of a text is scored: `ids[left:end]` behind one start token; the chunk's
    tokens are predicted by the window's positions `end - start` from the right."""

    left: int
    start: int
    end: int


def windows(n_tokens: int, chunk: int = CHUNK, context: int = CONTEXT) -> list[Window]:
    return [Window(max(0, s - context), s, min(s + chunk, n_tokens)) for s in range(0, n_tokens, chunk)]


def window_input(ids: torch.Tensor, window: Window, start_id: int) -> torch.Tensor:
    """(1, 1 + end - left) token ids: the start token, the context, then the chunk."""
    return torch.cat([torch.tensor([start_id]), ids[window.left : window.end]])[None]


def chunk_nll(model, x: torch.Tensor, chunk_len: int) -> torch.Tensor:
    """Negative log-likelihood, in nats, of each of the last `chunk_len` tokens of `x` (shape (chunk_len,))."""
    logits = model(input_ids=x).logits[0, :-1].float()  # position j predicts token j + 1
    return F.cross_entropy(logits[-chunk_len:], x[0, -chunk_len:], reduction="none")


def learn_step(model, optimizer, nll: torch.Tensor) -> None:
    """One SGD step on a chunk's mean loss (its gradient clipped to norm 1)."""
    nll.mean().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def learner_for(model, lr: float, device=None, optimizer=torch.optim.SGD):
    """A copy of `model` to adapt (the model itself is left as it is), in eval mode (no dropout:
    the compressor and decompressor must compute the same numbers), and its optimizer: any
    `torch.optim` class, or a function of (parameters, lr) that returns an optimizer."""
    learner = copy.deepcopy(model).float().to(device or next(model.parameters()).device).eval()
    return learner, optimizer(list(learner.parameters()), lr=lr)


def token_nats(model, ids: torch.Tensor, start_id: int, lr: float, chunk: int = CHUNK, context: int = CONTEXT,
               device=None, optimizer=torch.optim.SGD) -> list[torch.Tensor]:
    """The nats of every token of `ids`, chunk by chunk, each chunk scored *before* the model learns from
    it (lr=0: frozen). One tensor per chunk, in order; their concatenation has one entry per token."""
    learner, optimizer = learner_for(model, lr, device, optimizer)
    device = next(learner.parameters()).device
    scored = []
    for window in windows(len(ids), chunk, context):
        x = window_input(ids, window, start_id).to(device)
        with torch.set_grad_enabled(lr > 0):
            nll = chunk_nll(learner, x, window.end - window.start)
        scored.append(nll.detach().cpu())  # scored first ...
        if lr > 0:
            learn_step(learner, optimizer, nll)  # ... then learned from
    return scored


def dynamic_text_loss(model, ids: torch.Tensor, n_bytes: int, start_id: int, lr: float, chunk: int = CHUNK,
                      context: int = CONTEXT, device=None, optimizer=torch.optim.SGD) -> TextLoss:
    """Every token of `ids` scored chunk by chunk, each chunk scored *before* the model learns from it.

    With lr=0 nothing is learned: the same windows scored frozen (the static score of this
    protocol, which differs from `metrics.text_loss` only in that every chunk has context).
    """
    chunks = token_nats(model, ids, start_id, lr, chunk, context, device, optimizer)
    return TextLoss(nats=sum(nll.sum().item() for nll in chunks), tokens=len(ids), bytes=n_bytes)


def choose_lr(model, ids: torch.Tensor, n_bytes: int, start_id: int, grid=LR_GRID, device=None,
              chunk: int = CHUNK, context: int = CONTEXT, optimizer=torch.optim.SGD) -> tuple[float, dict]:
    """The rule, fixed in advance: the learning rate of `grid` (or 0, no learning) with the lowest
    dynamic bits per byte on `ids`, a text that is never reported. Returns (lr, {lr: bits per byte})."""
    scores = {lr: dynamic_text_loss(model, ids, n_bytes, start_id, lr, chunk, context, device, optimizer).bits_per_byte
              for lr in (0.0, *grid)}
    return min(scores, key=scores.get), scores


def gradient_rms(model, ids: torch.Tensor, start_id: int, chunk: int = CHUNK, context: int = CONTEXT,
                 every: int = 2) -> list[torch.Tensor]:
    """Each parameter's root-mean-square gradient over chunks of `ids` (the training text; every
    `every`-th chunk), in the order of `model.parameters()`: the scale `RMSDecay` divides by."""
    learner, _ = learner_for(model, lr=0.0)  # a copy: the model's own gradients stay untouched
    params = list(learner.parameters())
    sums, n = [torch.zeros_like(p) for p in params], 0
    for window in windows(len(ids), chunk, context)[::every]:
        x = window_input(ids, window, start_id).to(params[0].device)
        chunk_nll(learner, x, window.end - window.start).mean().backward()
        for total, p in zip(sums, params, strict=True):
            total += p.grad**2
            p.grad = None
        n += 1
    return [(total / max(n, 1)).sqrt() for total in sums]


class RMSDecay(torch.optim.Optimizer):
    """The update rule of Krause et al. (2019), "Dynamic evaluation of Transformer language models":
    each parameter steps by its gradient divided by its RMS gradient on the training text, then is
    pulled back toward its trained value by `decay`, so what one passage teaches fades.

    One change: the RMS is floored at its tensor's mean. Rows of the embedding that training
    hardly touched (tokens rare in the Jungle Book) have an RMS near zero, and dividing by it made
    the first new name in a text blow the model up (bits per byte: NaN)."""

    def __init__(self, params, lr: float, rms: list[torch.Tensor], decay: float = 0.01):
        params = list(params)
        if len(params) != len(rms):
            raise ValueError(f"{len(rms)} RMS tensors for {len(params)} parameters: compute them with "
                             "gradient_rms on the same model")
        super().__init__(params, {"lr": lr, "decay": decay})
        for p, r in zip(params, rms, strict=True):
            floor = r.mean().item() or 1.0  # a tensor training never moved at all: plain SGD steps
            self.state[p]["scale"] = torch.clamp(r, min=floor).to(p.device)
            self.state[p]["trained"] = p.detach().clone()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if p.grad is not None:
                    p.addcdiv_(p.grad, state["scale"], value=-group["lr"])
                p.add_(state["trained"] - p, alpha=group["decay"])
