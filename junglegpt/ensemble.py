"""Ensembles of sizes: one prediction from several models, by averaging their probabilities.

For every token, the ensemble's probability is a weighted average of the models' probabilities,
p(token) = sum_m w_m p_m(token), so its code length is -log of that average. The weights are chosen
on text that is not reported (as `dynamic.choose_lr` chooses its rate), by expectation-maximisation:
the weights that make the tuning text most likely. Static or dynamic is the models' own protocol:
averaging models that each learn as they read is still an honest code (each model's probability for
a token comes before it learns from it).
"""

from __future__ import annotations

import torch


def token_mixture_nats(nats: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Nats of each token under the weighted average of the models' probabilities, shape (tokens,).

    `nats` is (models, tokens): each model's nats for each token; `weights` (models,) sum to 1.
    """
    log_weights = torch.log(weights.double())[:, None]
    return -torch.logsumexp(log_weights - nats.double(), dim=0)


def mixture_nats(nats: torch.Tensor, weights: torch.Tensor) -> float:
    """Total nats of the weighted average of the models' probabilities (`token_mixture_nats`)."""
    return float(token_mixture_nats(nats, weights).sum())


def fit_weights(nats: torch.Tensor, steps: int = 200, tolerance: float = 1e-9) -> torch.Tensor:
    """The mixture weights that minimise `mixture_nats` on this text, by expectation-maximisation
    (each step cannot make the fit worse; the problem is convex, so it finds the best weights)."""
    nats = nats.double()
    weights = torch.full((nats.shape[0],), 1.0 / nats.shape[0], dtype=torch.float64)
    before = mixture_nats(nats, weights)
    for _ in range(steps):
        responsibility = torch.softmax(torch.log(weights)[:, None] - nats, dim=0)  # (models, tokens)
        weights = responsibility.mean(dim=1).clamp_min(1e-12)
        weights = weights / weights.sum()
        after = mixture_nats(nats, weights)
        if before - after < tolerance * max(1.0, abs(before)):
            break
        before = after
    return weights

