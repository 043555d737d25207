"""The compressor's predictor: the network and the count models, reading many stretches of a text side by side.

Coding a text one token at a time is slow for a small network on a CPU: each position costs a
hundred small operations, and the overhead of each dwarfs its arithmetic (about 5 ms a token for
1M on this project's 2-core machines). So the text is cut into `streams` stretches of equal
length, and all of them are read side by side: one batched step of the network predicts the next
token of every stream. Both sides of `junglegpt.compress` run exactly this loop, so they compute
bit-identical probabilities.

The protocol, step by step (every token is scored before anything learns from it):

- Stream s holds tokens `s * length` to `(s + 1) * length` of the text (the last one may be
  shorter: its padding is neither coded nor learned from).
- Each stream is read in the windows of `junglegpt.dynamic`: a chunk of 128 tokens behind up to
  127 earlier tokens *of its own stream* as context. All streams are at the same place at once.
- At each step, for every stream: the network's distribution (a batched step with a key-value
  cache, `NetworkSteps`), the counts' distribution (the stream's own last tokens as context; the
  tables are shared by all streams), and the two mixed as `junglegpt.mixture` mixes them (a
  blend whose weights take gradient steps, under a fixed-share safety net). Then the tokens of
  the step are coded in stream order, and then the counts and the mixer learn from each of them,
  in stream order.
- After each step, with lr > 0, the network learns while it reads: one SGD step of its output
  layer (the token embedding, which GPT-2 ties to it) on the step's tokens, from the hidden states
  the step computed anyway. Notebook 04's learning while reading (`junglegpt.dynamic`) steps every
  weight once per chunk, at the cost of a forward and a backward pass over the chunk again; read
  side by side, the streams would take one such step per `streams` chunks, and that step was both slower
  than the whole rest of the coding and weaker (benchmarks/compress_speed.py).

What side by side costs, in bits, against reading the text in order (`mixture.score` with
`junglegpt.dynamic`'s network), is measured in `benchmarks/compress_speed.py` and docs/results.md.
"""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import dynamic
from .mixture import Mixer, Settings, TokenCounts

# Stretches read side by side (fewer for a short text: each gets at least a chunk). Fewer cost fewer
# bits and more time; 16 keep the held-out book under a minute each way with 1M on 2 cores, within
# 1% of the mixture read in order (8 was not tried): 16 streams code it at 1.8925
# bits per byte in 46 s and 45 s, 32 at 1.8953 in 43 s and 41 s, 64 at 1.8997 in 36 s and 35 s
# (benchmarks/compress_speed.py, docs/results.md).
STREAMS = 16


@dataclass(frozen=True)
class Layout:
    """How `n_tokens` tokens are cut into `streams` stretches of `length` tokens (the last shorter)."""

    n_tokens: int
    streams: int
    length: int

    @classmethod
    def for_text(cls, n_tokens: int, streams: int = STREAMS, chunk: int = dynamic.CHUNK) -> Layout:
        streams = max(1, min(streams, n_tokens // chunk))
        length = -(-n_tokens // streams)  # ceil
        return cls(n_tokens, -(-n_tokens // length) if n_tokens else 1, length)

    def stream_ids(self, ids: list[int]) -> list[list[int]]:
        return [ids[s * self.length : (s + 1) * self.length] for s in range(self.streams)]


class NetworkSteps:
    """GPT-2's forward pass for a batch of streams, a position at a time, with a key-value cache.

    The same arithmetic as transformers' GPT2LMHeadModel in eval mode (tests/test_streams.py checks
    the logits against it), written out so that one step is a few dozen operations on preallocated
    tensors: transformers' own cached step costs about twice as much here. It reads the model's
    weights at every call, so the steps of learning while reading are seen at once."""

    def __init__(self, model, batch: int):
        config = model.config
        unusual = config.scale_attn_by_inverse_layer_idx, config.reorder_and_upcast_attn, not config.scale_attn_weights
        if config.activation_function not in ("gelu_new", "gelu_pytorch_tanh") or any(unusual):
            raise ValueError("NetworkSteps computes GPT-2 as notebook 03 configures it (gelu_new, attention "
                             "scaled by 1/sqrt(head size)); this model's config differs")
        self.model = model.transformer
        self.heads, self.width, self.eps = config.n_head, config.n_embd, config.layer_norm_epsilon
        head_size = self.width // self.heads
        # (layer, key or value, stream, head, position, head size)
        self.cache = torch.zeros(config.n_layer, 2, batch, self.heads, config.n_positions, head_size)
        self.scale = 1.0 / math.sqrt(head_size)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, position: int) -> torch.Tensor:
        """Logits (batch, vocabulary) for the token after `x` (batch, T), whose first token is at
        `position`; the cache must hold positions 0 to `position` - 1."""
        net, width, heads = self.model, self.width, self.heads
        batch, length = x.shape
        end = position + length
        h = net.wte.weight[x] + net.wpe.weight[position:end]  # (batch, T, width)
        for layer, block in enumerate(net.h):
            a = F.layer_norm(h, (width,), block.ln_1.weight, block.ln_1.bias, self.eps).view(-1, width)
            qkv = torch.addmm(block.attn.c_attn.bias, a, block.attn.c_attn.weight)
            q, k, v = qkv.view(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4)  # each (batch, heads, T, hs)
            keys, values = self.cache[layer, 0, :batch], self.cache[layer, 1, :batch]
            keys[:, :, position:end], values[:, :, position:end] = k, v
            if length > 1:  # filling the cache: causal attention within x
                o = F.scaled_dot_product_attention(q, keys[:, :, :end], values[:, :, :end], is_causal=True)
            else:  # one new position attends to all before it
                o = torch.softmax(q @ keys[:, :, :end].transpose(-1, -2) * self.scale, -1) @ values[:, :, :end]
            o = o.transpose(1, 2).reshape(batch * length, width)
            h = h + torch.addmm(block.attn.c_proj.bias, o, block.attn.c_proj.weight).view(batch, length, width)
            a = F.layer_norm(h, (width,), block.ln_2.weight, block.ln_2.bias, self.eps).view(-1, width)
            f = F.gelu(torch.addmm(block.mlp.c_fc.bias, a, block.mlp.c_fc.weight), approximate="tanh")
            h = h + torch.addmm(block.mlp.c_proj.bias, f, block.mlp.c_proj.weight).view(batch, length, width)
        self.last = F.layer_norm(h[:, -1], (width,), net.ln_f.weight, net.ln_f.bias, self.eps)  # (batch, width)
        return self.last @ net.wte.weight.T


class SharedCounts:
    """`mixture.TokenCounts` shared by all streams, with whole distributions fast enough to code with.

    The order-0 counts (which hold nearly every token) are mirrored in an array, so that the
    distribution of a step starts from one vectorised expression; each longer context adds only
    the few tokens it has seen."""

    def __init__(self, vocab_size: int, settings: Settings, prime_ids: list[int]):
        self.counts = TokenCounts(vocab_size, settings.max_order, settings.discount).prime(prime_ids)
        self.vocab_size, self.discount = vocab_size, settings.discount
        self.cache: dict[tuple, tuple] = {}  # context -> (its total when cached, tokens, their extra p)
        self.order0 = np.zeros(vocab_size)
        entry = self.counts.tables[0].get(())
        if entry is not None:
            for token, count in entry[1].items():
                self.order0[token] = count

    def distributions(self, histories: list[list[int]]) -> np.ndarray:
        """(streams, vocabulary): p(next token) after each history, as `TokenCounts.prob` gives it."""
        d, vocab = self.discount, self.vocab_size
        tables = self.counts.tables
        out = np.empty((len(histories), vocab))
        entry = tables[0].get(())
        if entry is None:
            out[:] = 1.0 / vocab
            return out
        total, seen = entry
        base = (np.maximum(self.order0 - d, 0.0) + d * len(seen) / vocab) / total
        for row, history in zip(out, histories, strict=True):
            p = base
            for table, context in zip(tables[1:], self.counts.contexts(history)[1:]):  # noqa: B905
                entry = table.get(context)
                if entry is None:
                    break
                total, seen = entry
                tokens, extra = self._sparse(context, entry)
                p = p * (d * len(seen) / total)
                p[tokens] += extra
            row[:] = p
        return out

    def _sparse(self, context: tuple, entry: list) -> tuple[np.ndarray, np.ndarray]:
        """A context's seen tokens and what they add over the shorter context's share,
        (max(c - d, 0) / total), kept until the context's counts change."""
        cached = self.cache.get(context)
        if cached is None or cached[0] != entry[0]:
            total, seen = entry
            tokens = np.fromiter(seen.keys(), dtype=np.int64, count=len(seen))
            numbers = np.fromiter(seen.values(), dtype=np.float64, count=len(seen))
            cached = self.cache[context] = (total, tokens, np.maximum(numbers - self.discount, 0.0) / total)
        return cached[1], cached[2]

    def update(self, history: list[int], token: int) -> None:
        entry = self.counts.tables[0].get(())
        before = entry[0] if entry else 0
        self.counts.update(self.counts.contexts(history), token)
        if self.counts.tables[0][()][0] != before:  # update exclusion reached order 0
            self.order0[token] += 1


class _InOrder(contextlib.nullcontext):
    """An executor that runs each task at once in the calling thread: `Predictor.run` one step after
    the other (tests/test_streams.py checks that overlapping changes no number)."""

    def __enter__(self):
        return self

    def submit(self, task, *args) -> Future:
        done = Future()
        done.set_result(task(*args))
        return done


class Predictor:
    """The loop both sides of the compressor share (see the module's docstring).

    `run(code)` calls `code(probabilities, stream_indices)` once per step with the (active streams,
    vocabulary) float64 distributions of the step, in stream order; `code` returns the tokens of
    those streams (the compressor looks them up, the decompressor decodes them). Returns every
    token, in the text's order. `nats[part]` holds what each part alone, and the mixture, would
    have spent on each token (for the benchmark; the file's size is the coder's)."""

    def __init__(self, model, start_id: int, layout: Layout, lr: float, settings: Settings | None,
                 prime_ids: list[int]):
        self.layout, self.start_id, self.lr, self.settings = layout, start_id, lr, settings
        self.learner, self.optimizer = dynamic.learner_for(model, lr, "cpu")
        self.vocab_size = model.config.vocab_size
        self.steps = NetworkSteps(self.learner, layout.streams)
        self.counts = SharedCounts(self.vocab_size, settings, prime_ids) if settings else None
        self.mixer = Mixer(2, settings.mixer_lr, settings.share) if settings else None  # network, counts
        self.prime_tail = list(prime_ids[-settings.max_order :]) if settings and settings.max_order else []
        self.nats: dict[str, list[float]] = {"network": [], "counts": [], "mixture": []}

    def run(self, code, overlap: bool = True) -> list[int]:
        layout = self.layout
        streams = [[] for _ in range(layout.streams)]
        real = [min(layout.length, layout.n_tokens - s * layout.length) for s in range(layout.streams)]
        # The network's side of a step (its output layer learning from the step's tokens, then its
        # next step) and the counts' side (learning, then their next distributions) need nothing
        # from each other, so they run at once, the network in a second thread (torch lets go of
        # Python's lock while it computes). The same numbers as one after the other, sooner.
        threads = torch.get_num_threads()
        side = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(threads,)) if overlap else _InOrder()
        with side:
            for window in dynamic.windows(layout.length):
                context = torch.full((layout.streams, 1 + window.start - window.left), self.start_id)
                for row, ids in zip(context, streams, strict=True):  # a finished stream's is padding
                    seen = ids[window.left : window.start]
                    row[1 : 1 + len(seen)] = torch.tensor(seen, dtype=torch.long)
                logits = self.steps(context, 0)
                active = [s for s in range(layout.streams) if window.start < real[s]]
                counts = self._counts([streams[s] for s in active])
                for position in range(window.start, window.end):
                    logits = logits[: len(active)]
                    probs = self._mix(logits, counts)
                    tokens = code(probs, active)
                    following = position + 1 < window.end
                    fed = [tokens[s] if s < len(active) else self.start_id for s in range(layout.streams)]
                    network = side.submit(self._network_side, logits, tokens, fed if following else None,
                                          1 + position - window.left)
                    self._learn_tokens(probs, active, tokens, streams)
                    if following:
                        active = [s for s in active if position + 1 < real[s]]
                        counts = self._counts([streams[s] for s in active])
                    logits = network.result()
        return [token for ids in streams for token in ids]

    def _network_side(self, logits: torch.Tensor, tokens: list[int], fed: list[int] | None, position: int):
        """Learn from the step's tokens (with lr > 0), then the logits of the next step (None after
        a window's last position)."""
        if self.lr > 0:
            self._learn_output(logits, tokens)
        return None if fed is None else self.steps(torch.tensor(fed)[:, None], position)

    def _counts(self, histories: list[list[int]]) -> np.ndarray | None:
        if self.counts is None:
            return None
        return self.counts.distributions([self.prime_tail + h[-self.settings.max_order :] for h in histories])

    def _mix(self, logits: torch.Tensor, counts: np.ndarray | None) -> np.ndarray:
        network = torch.softmax(logits.double(), -1).numpy()
        if counts is None:
            return network
        self._parts = network, counts
        on_network, on_counts = self.mixer.coefficients()
        return on_network * network + on_counts * counts

    def _learn_tokens(self, probs: np.ndarray, active: list[int], tokens: list[int], streams) -> None:
        rows = np.arange(len(active))
        self.nats["mixture"].extend((-np.log(probs[rows, tokens])).tolist())
        if self.counts is None:
            self.nats["network"].extend(self.nats["mixture"][-len(active) :])
        else:
            network, counts = self._parts
            p_network, p_counts = network[rows, tokens].tolist(), counts[rows, tokens].tolist()
            self.nats["network"].extend(-math.log(max(p, 1e-300)) for p in p_network)
            self.nats["counts"].extend(-math.log(max(p, 1e-300)) for p in p_counts)
            for s, token, pn, pc in zip(active, tokens, p_network, p_counts, strict=True):
                self.counts.update(self.prime_tail + streams[s][-self.settings.max_order :], token)
                self.mixer.learn([pn, pc])
        for s, token in zip(active, tokens, strict=True):
            streams[s].append(int(token))

    @torch.no_grad()
    def _learn_output(self, logits: torch.Tensor, tokens: list[int]) -> None:
        """One SGD step of the output layer (the embedding, tied) on the step's tokens, from the
        hidden states the step computed anyway: d(-log p_t)/d W = (softmax - onehot)^T h."""
        error = torch.softmax(logits, -1)
        error[torch.arange(len(tokens)), torch.tensor(tokens)] -= 1.0
        grad = error.T @ self.steps.last[: len(tokens)] / len(tokens)
        grad *= min(1.0, dynamic.GRAD_CLIP / (grad.norm().item() + 1e-12))
        self.learner.transformer.wte.weight -= self.lr * grad
