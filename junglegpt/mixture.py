"""The network mixed with count models that learn as they read.

Three predictors of the next token, each giving every token of the vocabulary a probability:

- the **network**, frozen or learning while it reads (its nats per token come from
  `junglegpt.dynamic.token_nats`);
- **counts** (`TokenCounts`): how often each token followed the last 0, 1, ..., `max_order` tokens,
  primed on the training text and updated after every token they score; the orders are blended by
  interpolated absolute discounting, and a lower order counts a pair only the first time a longer
  context shows it (PPM's update exclusion, which is Kneser-Ney's idea: "Mowgli" after an unseen
  context should be as likely as the number of *different* contexts it followed, not as frequent);
- a **match model** (`MatchModel`): the last time the current `min_match` tokens appeared, which
  token followed? It predicts that one again, as surely as such predictions have come true before
  at this match length; whatever probability is left goes to the counts' distribution.

The **mixer** weighs the three token by token, in two layers:

1. p(token) = sum_i w_i p_i(token), the weights a softmax of numbers that take a gradient step on
   the code length after every token (as paq8's mixers do): a part that gave the token more than
   the mixture did gains weight. This layer finds the best *blend*, which beats every part alone
   where they fail on different tokens. There is one set of weights per *context* (how long the
   current match is, the longest count context seen before, how surprised the network was by the
   previous token) where `Settings.contexts` says so.
2. A Bayesian mixture with fixed share (Herbster & Warmuth, 1998) of that blend and of each part
   alone: every weight is multiplied by the probability its predictor gave the token, normalised,
   and a `share` is spread evenly again. It is the safety net: it can never be worse than its best
   predictor by more than ln(4) nats plus ln(1 / (1 - share)) per token (tests/test_mixture.py).

Every token is scored before any part (network, counts, match model, mixer) learns from it, so the
total is an honest code length. Bits per byte are compared with PPMd and zpaq in notebook 04.

The compressor (`junglegpt.streams`) has every part's whole distribution, not one probability per
token, and adds a second stage: the blend mixed again with a `Product` of the parts.
"""

from __future__ import annotations

import bisect
import math
import pickle
from dataclasses import dataclass

import numpy as np

from .metrics import bits_per_byte

PARTS = ("network", "counts", "match")
MATCH_BUCKETS = (1, 4, 6, 8, 12, 16, 24, 32)  # match lengths (tokens) where the mixer's context changes
SURPRISE_BUCKETS = (1.0, 3.0)  # nats the network spent on the previous token: sure / unsure / lost


@dataclass(frozen=True)
class Settings:
    """Everything the mixture's score depends on, besides the texts and the network."""

    max_order: int = 4  # the longest count context, in tokens
    discount: float = 0.8  # subtracted from every count (0 < d <= 1), given to the shorter context
    min_match: int = 3  # tokens that must repeat before the match model predicts
    mixer_lr: float = 0.1  # the blend's gradient step (0: a fixed, even blend)
    share: float = 0.002  # of the safety net's weight spread evenly after each token
    contexts: bool = False  # the blend: one set of weights per context (False: one for the text)

    def __post_init__(self):
        problems = [f"{name} = {value!r} (wanted {wanted})" for name, value, ok, wanted in (
            ("max_order", self.max_order, isinstance(self.max_order, int) and 0 <= self.max_order <= 12, "0 to 12"),
            ("discount", self.discount, 0 < self.discount <= 1, "more than 0, at most 1"),
            ("min_match", self.min_match, isinstance(self.min_match, int) and self.min_match >= 1, "1 or more"),
            ("mixer_lr", self.mixer_lr, 0 <= self.mixer_lr <= 10, "0 to 10"),
            ("share", self.share, 0 <= self.share < 1, "0 or more, below 1"),
        ) if not ok]
        if problems:
            raise ValueError("mixture settings out of range: " + "; ".join(problems))


# The rule, fixed in advance: these settings are tried on text that is not reported (as
# dynamic.choose_lr chooses its rate), and the one that codes it in the fewest bits is used.
GRID = tuple(Settings(discount=d) for d in (0.5, 0.65, 0.8))


class TokenCounts:
    """Online counts of which token followed each context of 0..`max_order` tokens.

    `prob` blends the orders from the shortest up: at each order whose context has been seen,
        p_k(w) = (max(c(w) - d, 0) + d * types * p_{k-1}(w)) / total,
    where `types` is how many different tokens followed that context. It sums to 1 over the
    vocabulary at every order (each count is at least 1 >= d), starting from a uniform p_{-1}.
    """

    def __init__(self, vocab_size: int, max_order: int, discount: float):
        self.vocab_size, self.max_order, self.discount = vocab_size, max_order, discount
        # order k: context (a tuple of k token ids) -> [total, {token: count}]
        self.tables: list[dict] = [{} for _ in range(max_order + 1)]

    def contexts(self, history: list[int]) -> list[tuple]:
        """The contexts of the next token, shortest first: (), (last,), (second last, last), ..."""
        n = len(history)
        return [tuple(history[n - k :]) if k else () for k in range(min(self.max_order, n) + 1)]

    def prob(self, contexts: list[tuple], token: int) -> tuple[float, int]:
        """p(token) after these contexts, and how many of them had been seen (0 to max_order + 1)."""
        p, d, seen = 1.0 / self.vocab_size, self.discount, 0
        for table, context in zip(self.tables, contexts):  # noqa: B905 - contexts may be shorter
            entry = table.get(context)
            if entry is None:  # a longer context cannot have been seen either
                break
            total, counts = entry
            p = (max(counts.get(token, 0) - d, 0.0) + d * len(counts) * p) / total
            seen += 1
        return p, seen

    def distribution(self, history: list[int]) -> np.ndarray:
        """p over the whole vocabulary (for checks and pictures; scoring needs one token's p)."""
        p, d = np.full(self.vocab_size, 1.0 / self.vocab_size), self.discount
        for table, context in zip(self.tables, self.contexts(history)):  # noqa: B905
            entry = table.get(context)
            if entry is None:
                break
            total, counts = entry
            counted = np.zeros(self.vocab_size)
            counted[list(counts)] = list(counts.values())
            p = (np.maximum(counted - d, 0.0) + d * len(counts) * p) / total
        return p

    def update(self, contexts: list[tuple], token: int) -> None:
        """Count `token` after its contexts, the longest first; a shorter one only if the longer
        had never seen it there (update exclusion)."""
        for table, context in zip(reversed(self.tables[: len(contexts)]), reversed(contexts), strict=True):
            entry = table.get(context)
            if entry is None:
                entry = table[context] = [0, {}]
            entry[0] += 1
            before = entry[1].get(token, 0)
            entry[1][token] = before + 1
            if before:
                break

    def prime(self, ids) -> TokenCounts:
        history: list[int] = []
        for token in ids:
            self.update(self.contexts(history), token)
            history.append(token)
        return self


class MatchModel:
    """Predicts that the longest earlier repeat of the last tokens goes on as it did.

    `index` maps every run of `min_match` tokens to the position just after its last occurrence.
    While a prediction keeps coming true the match grows by one token; after a miss the model
    looks up the last `min_match` tokens again. How often predictions came true at each match
    length (`hits`) is how sure the next one is.
    """

    def __init__(self, min_match: int):
        self.min_match = min_match
        self.history: list[int] = []
        self.index: dict[tuple, int] = {}
        self.pointer: int | None = None  # where in history the predicted token is
        self.length = 0  # how many tokens before it match the last ones
        self.hits = [[0.5, 1.0] for _ in range(len(MATCH_BUCKETS) + 1)]  # [hits, tries] per bucket

    def bucket(self) -> int:
        """0: no prediction; then by match length (MATCH_BUCKETS)."""
        return 0 if self.pointer is None else bisect.bisect_right(MATCH_BUCKETS, self.length)

    def predicted(self) -> int | None:
        return None if self.pointer is None else self.history[self.pointer]

    def confidence(self) -> float:
        hits, tries = self.hits[self.bucket()]
        return hits / tries

    def update(self, token: int) -> None:
        if self.pointer is not None:
            hit = self.history[self.pointer] == token
            stats = self.hits[self.bucket()]
            stats[0] += hit
            stats[1] += 1
            self.pointer, self.length = (self.pointer + 1, self.length + 1) if hit else (None, 0)
        self.history.append(token)
        n = self.min_match
        if len(self.history) < n:
            return
        key = tuple(self.history[-n:])
        if self.pointer is None and key in self.index:  # before this position is indexed: never itself
            self.pointer = self.index[key]
            self.length = self._match_length(self.pointer)
        self.index[key] = len(self.history)

    def _match_length(self, pointer: int, longest: int = 64) -> int:
        """How many tokens before `pointer` equal the last tokens of the history."""
        history, length = self.history, 0
        while length < min(longest, pointer) and history[pointer - 1 - length] == history[-1 - length]:
            length += 1
        return length

    def prime(self, ids) -> MatchModel:
        for token in ids:
            self.update(token)
        return self


def match_prob(match: MatchModel, counts: TokenCounts, contexts: list[tuple], token: int, p_counts: float) -> float:
    """The match model's p(token): its confidence on the predicted token, the rest spread as the
    counts would (their distribution without the predicted token, renormalised); the counts'
    own p where it predicts nothing. Sums to 1 over the vocabulary either way."""
    predicted = match.predicted()
    if predicted is None:
        return p_counts
    sure = match.confidence()
    if token == predicted:
        return sure
    p_predicted = counts.prob(contexts, predicted)[0]
    return (1.0 - sure) * p_counts / (1.0 - p_predicted)


def surprise_bucket(nats: float | None) -> int:
    return 0 if nats is None else bisect.bisect_right(SURPRISE_BUCKETS, nats)


@dataclass
class Scored:
    """Nats per token of the mixture and of each part alone (and of the blend, the first layer);
    the blend's final weights by context, and the safety net's."""

    nats: np.ndarray
    part_nats: dict[str, np.ndarray]
    weights: dict[tuple, list[float]]
    net_weights: list[float]
    settings: Settings

    def bits_per_byte(self, n_bytes: int, part: str | None = None) -> float:
        nats = self.nats if part is None else self.part_nats[part]
        return bits_per_byte(float(nats.sum()), n_bytes)


def softmax(numbers: list[float]) -> list[float]:
    top = max(numbers)
    exps = [math.exp(x - top) for x in numbers]
    total = sum(exps)
    return [e / total for e in exps]


class Mixer:
    """The mixer's two layers (see the module's docstring) for `n_parts` parts: the blend, whose
    weights are softmax(logits), one set per context; and the safety net over the blend and each
    part alone. `mixture.score` gives it one token's probabilities, the compressor's streams whole
    distributions (`coefficients`)."""

    def __init__(self, n_parts: int, lr: float, share: float):
        self.n_parts, self.lr, self.share = n_parts, lr, share
        self.logits: dict[tuple, list[float]] = {}  # layer 1, by context
        self.net = [1.0 / (n_parts + 1)] * (n_parts + 1)  # layer 2: the blend, then each part alone

    def _logits(self, context: tuple) -> list[float]:
        return self.logits.setdefault(context, [0.0] * self.n_parts)

    def coefficients(self, context: tuple = ()) -> list[float]:
        """What each part's distribution is multiplied by in the mixture (they sum to 1): the safety
        net's weight on the blend spread over the blend's parts, plus the part's own."""
        w = softmax(self._logits(context))
        return [self.net[0] * wi + self.net[1 + i] for i, wi in enumerate(w)]

    def learn(self, ps: list[float], context: tuple = ()) -> tuple[float, float]:
        """The mixture's and the blend's probability of a token each part gave `ps`, then learn from
        it: the blend by a gradient step on its code length, -log p_blend (d/d logit_i =
        w_i (1 - p_i / p_blend)), the safety net by Bayes' rule and the share."""
        ps = [max(p, 1e-300) for p in ps]
        logits = self._logits(context)
        w = softmax(logits)
        p_blend = sum(wi * pi for wi, pi in zip(w, ps, strict=True))
        candidates = [p_blend, *ps]
        p_mix = sum(wi * pi for wi, pi in zip(self.net, candidates, strict=True))
        for i, (wi, pi) in enumerate(zip(w, ps, strict=True)):
            logits[i] += self.lr * wi * (pi / p_blend - 1.0)
        posterior = [wi * pi / p_mix for wi, pi in zip(self.net, candidates, strict=True)]
        self.net = [(1 - self.share) * q + self.share / len(self.net) for q in posterior]
        return p_mix, p_blend

    def blend_weights(self) -> dict[tuple, list[float]]:
        return {context: softmax(logits) for context, logits in self.logits.items()}


class Product:
    """A product of experts: p(w) proportional to prod_j p_j(w) ** a_j, for whole distributions.

    Where the blend adds probabilities (a token is as likely as the parts' weighted average says),
    the product adds log probabilities: a token every part finds likely stands out more, and a
    token one part rules out is ruled out; a weight below 1 flattens a part, a negative one
    subtracts it (the counts of one token back tell the longer counts what is merely frequent).
    The weights take a gradient step on the code length after every token, as the blend's do:
    d(-log p(y)) / d a_j = E_p[log p_j] - log p_j(y), so a part whose log probability of the token
    beat its average under the product gains weight. The compressor mixes it with the blend
    (`junglegpt.streams`); it needs every part's whole distribution, which `mixture.score`, fed one
    probability per token, does not have."""

    def __init__(self, weights, lr: float):
        self.weights, self.lr = np.array(weights, dtype=np.float64), lr

    def distributions(self, logs: np.ndarray, known: np.ndarray | float = 0.0) -> np.ndarray:
        """The product's distributions (rows, vocabulary) from the parts' log probabilities, (parts,
        rows, vocabulary). `known`: the last parts' share of the sum, from `known_scores` (the
        compressor computes it while the network's step runs); `logs` then holds the first parts."""
        scores = _weighted_sum(self.weights[: len(logs)], logs) + known
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        return p

    def known_scores(self, last_logs: np.ndarray) -> np.ndarray:
        """sum_j a_j log p_j(w) over the last len(last_logs) parts, (rows, vocabulary)."""
        return _weighted_sum(self.weights[len(self.weights) - len(last_logs) :], last_logs)

    @staticmethod
    def expected(p: np.ndarray, logs: np.ndarray) -> np.ndarray:
        """Each part's expected log probability under the product's `p`, (rows, parts): `learn`
        needs it."""
        return np.einsum("rv,jrv->rj", p, logs)

    def learn(self, logs_of_tokens: np.ndarray, expected: np.ndarray) -> None:
        """A gradient step for each of the tokens of one call of `distributions` (rows, parts: each
        part's log probability of the row's token, and `expected` of its distributions). They
        were all computed before any of the tokens was known, so the steps add up to one."""
        self.weights += self.lr * (logs_of_tokens - expected).sum(axis=0)


def _weighted_sum(weights: np.ndarray, arrays: np.ndarray) -> np.ndarray:
    """sum_j weights[j] * arrays[j], element by element. (Not np.tensordot: that calls BLAS, whose
    own threads would compete with the compressor's network process for the cores.)"""
    total = weights[0] * arrays[0]
    for weight, array in zip(weights[1:], arrays[1:], strict=True):
        total += weight * array
    return total


# Primed counts and match models, pickled, by (priming text, vocabulary, max_order, min_match): the
# rule scores every setting of GRID after the same priming text, and notebook 04 scores each text
# three ways, so one priming served 24 times. Unpickling a copy takes half the time of priming
# again (0.5 s against 1.2 s for the training text's 71 thousand tokens on a 2-core Xeon).
_PRIMED: dict[tuple, bytes] = {}
_PRIMED_KEPT = 4


def primed(prime_ids, vocab_size: int, settings: Settings) -> tuple[TokenCounts, MatchModel]:
    """Counts and a match model that have read `prime_ids`, each call a fresh copy (scoring goes
    on learning in it), with `settings.discount`."""
    ids = tuple(int(t) for t in prime_ids)
    key = (ids, vocab_size, settings.max_order, settings.min_match)
    if key not in _PRIMED:
        counts = TokenCounts(vocab_size, settings.max_order, settings.discount).prime(ids)
        if len(_PRIMED) >= _PRIMED_KEPT:
            _PRIMED.pop(next(iter(_PRIMED)))  # the oldest
        _PRIMED[key] = pickle.dumps((counts, MatchModel(settings.min_match).prime(ids)), pickle.HIGHEST_PROTOCOL)
    counts, match = pickle.loads(_PRIMED[key])
    counts.discount = settings.discount
    return counts, match


def score(prime_ids, ids, network_nats, settings: Settings = Settings(), vocab_size: int = 2048,
          parts: tuple[str, ...] = PARTS) -> Scored:
    """Score every token of `ids`, each before anything learns from it.

    `prime_ids`: the text the counts and the match model have read first (the training text);
    `network_nats[t]`: the network's nats for `ids[t]` (frozen or learning: `dynamic.token_nats`),
    or None where `parts` leaves the network out. The counts' and the match model's history runs
    on from the priming text, as if the two texts were one."""
    ids = [int(t) for t in ids]
    unknown = sorted(set(parts) - set(PARTS)) or ([] if parts else ["(none)"])
    if unknown:
        raise ValueError(f"unknown parts {unknown}: choose from {PARTS}")
    if "network" in parts:
        network_nats = np.asarray(network_nats, dtype=np.float64)
        if network_nats.shape != (len(ids),) or not np.isfinite(network_nats).all():
            raise ValueError(f"network_nats must hold one finite number per token ({len(ids)}), "
                             f"not an array of shape {network_nats.shape}")
    counts, match = primed(prime_ids, vocab_size, settings)
    history = list(match.history)  # the counts' history: the same tokens
    mixer = Mixer(len(parts), settings.mixer_lr, settings.share)
    mixed = np.empty(len(ids))
    alone = {part: np.empty(len(ids)) for part in (*parts, "blend")}
    previous_surprise = None
    for t, token in enumerate(ids):
        contexts = counts.contexts(history)
        p_counts, seen = counts.prob(contexts, token)
        p = {"counts": p_counts}
        if "match" in parts:
            p["match"] = match_prob(match, counts, contexts, token, p_counts)
        if "network" in parts:
            p["network"] = math.exp(-network_nats[t])
        ps = [max(p[part], 1e-300) for part in parts]
        context = (match.bucket(), seen, surprise_bucket(previous_surprise)) if settings.contexts else ()
        p_mix, p_blend = mixer.learn(ps, context)  # scored; now everything learns from the token
        mixed[t] = -math.log(p_mix)
        for part, pi in zip((*parts, "blend"), (*ps, p_blend), strict=True):
            alone[part][t] = -math.log(pi)
        counts.update(contexts, token)
        match.update(token)
        history.append(token)
        if "network" in parts:
            previous_surprise = network_nats[t]
    return Scored(mixed, alone, mixer.blend_weights(), mixer.net, settings)


def choose_settings(prime_ids, tune_ids, tune_network_nats, n_bytes: int, grid=GRID, vocab_size: int = 2048,
                    parts: tuple[str, ...] = PARTS) -> tuple[Settings, dict]:
    """The rule: the settings of `grid` with the lowest bits per byte on `tune_ids`, a text that is
    never reported. Returns (settings, {index in grid: bits per byte})."""
    scores = {i: score(prime_ids, tune_ids, tune_network_nats, s, vocab_size, parts).bits_per_byte(n_bytes)
              for i, s in enumerate(grid)}
    best = min(scores, key=scores.get)
    return grid[best], scores
