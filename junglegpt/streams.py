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
  tables are shared by all streams), and the two mixed in two stages. First as
  `junglegpt.mixture` mixes them (a blend whose weights take gradient steps, under a fixed-share
  safety net); then that blend is mixed the same way with a product of experts
  (`mixture.Product`: the network, the counts, the counts after one and two tokens of context,
  and the stream's recent tokens, their probabilities multiplied, each raised to a learned power).
  Then the tokens of the step are coded in stream order, and then the counts, the recent tokens
  and both mixers learn from each of them, in stream order.
- After each step, with lr > 0, the network learns while it reads: one SGD step of its output
  layer (the token embedding, which GPT-2 ties to it) on the step's tokens, from the hidden states
  the step computed anyway. Notebook 04's learning while reading (`junglegpt.dynamic`) steps every
  weight once per chunk, at the cost of a forward and a backward pass over the chunk again; read
  side by side, the streams would take one such step per `streams` chunks, and that step was both slower
  than the whole rest of the coding and weaker (benchmarks/compress_speed.py).

The network's side of each step runs in a process of its own, beside the counts' side
(`_NetworkProcess`). What side by side costs, in bits, against reading the text in order
(`mixture.score` with `junglegpt.dynamic`'s network; it has the first stage only), and what the
second stage buys, are measured in `benchmarks/compress_speed.py` and docs/results.md.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
import traceback
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import dynamic
from .mixture import Mixer, Product, Settings, TokenCounts

# Stretches read side by side (fewer for a short text: each gets at least a chunk). Fewer cost fewer
# bits and more time; 16 keep the held-out book under a minute each way with 1M on 2 cores (8 was
# not tried): with both stages of the mixture, 16 streams code it at 1.8657 bits per byte in 38 s
# each way, 32 at 1.8701 (benchmarks/compress_speed.py, docs/results.md).
STREAMS = 16

# The second stage of the mixture (see Predictor): a product of the network, the counts, the
# counts' distributions after one and two tokens of context, and a cache of each stream's recent
# tokens, mixed with the blend of the network and the counts. Its settings were chosen as the rest
# of the compressor's, on the validation text with the full-profile 1M, never the held-out book
# (docs/results.md): the product's rate from 0.0002, 0.0005, 0.001 and 0.002; the cache's decay
# (0.99, 0.995, 0.998: the same to 0.0002) and floor were not tuned further.
PRODUCT_PARTS = ("network", "counts", "counts, 1 token", "counts, 2 tokens", "recent tokens")
PRODUCT_START = (0.6, 0.6, 0.0, 0.0, 0.0)  # the product's first weights, in PRODUCT_PARTS' order
PRODUCT_LR = 0.0005
LOWER_ORDERS = (1, 2)
RECENT_DECAY = 0.995  # each stream's token counts shrink by this after each of its tokens
RECENT_FLOOR = 0.05  # added to every token's count: a token not seen lately is unlikely, not impossible


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

    def distributions(self, histories: list[list[int]], lower: tuple[int, ...] = ()) -> np.ndarray:
        """(streams, vocabulary): p(next token) after each history, as `TokenCounts.prob` gives it.
        With `lower` orders, (1 + len(lower), streams, vocabulary): then also the distribution
        the blend of the orders had reached after each of those (the full one where the history's
        longest seen context is shorter)."""
        d, vocab = self.discount, self.vocab_size
        tables = self.counts.tables
        out = np.empty((1 + len(lower), len(histories), vocab))
        entry = tables[0].get(())
        if entry is None:
            out[:] = 1.0 / vocab
            return out if lower else out[0]
        total, seen = entry
        base = (np.maximum(self.order0 - d, 0.0) + d * len(seen) / vocab) / total
        for row, history in enumerate(histories):
            p, order = base, 0
            for table, context in zip(tables[1:], self.counts.contexts(history)[1:]):  # noqa: B905
                entry = table.get(context)
                if entry is None:
                    break
                total, seen = entry
                tokens, extra = self._sparse(context, entry)
                p = p * (d * len(seen) / total)
                p[tokens] += extra
                order += 1
                if order in lower:
                    out[1 + lower.index(order), row] = p
            out[0, row] = p
            for i, k in enumerate(lower):
                if k > order:
                    out[1 + i, row] = p
        return out if lower else out[0]

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


class RecentTokens:
    """Each stream's recent tokens as a distribution: counts that shrink by RECENT_DECAY after each
    of the stream's tokens (a token 140 tokens back counts half), plus RECENT_FLOOR for every
    token. A name that turns up on one page of the book is likely again on the next."""

    def __init__(self, n_streams: int, vocab_size: int):
        self.counts = np.zeros((n_streams, vocab_size))

    def distributions(self, active: list[int]) -> np.ndarray:
        p = self.counts[active] + RECENT_FLOOR
        return p / p.sum(axis=1, keepdims=True)

    def update(self, active: list[int], tokens: list[int]) -> None:
        self.counts[active] *= RECENT_DECAY
        self.counts[active, tokens] += 1.0


# Whether the network's side gets a process of its own: forked, on Linux. Elsewhere (forking a process
# that uses torch is unsafe on macOS, impossible on Windows) the steps run one after the other: a
# process started afresh imports the caller's script again, which breaks a script without an
# `if __name__ == "__main__"` guard (and the second thread it replaced was no faster than in order).
FORK = sys.platform.startswith("linux")


class NetworkProcessError(RuntimeError):
    """The network's process failed or ended; nothing was written."""


class _InOrder:
    """The network's side of each step run at once, in this process: `Predictor.run` one step after
    the other (tests/test_streams.py checks that a process of its own changes no number)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, method: str, *args) -> Future:
        done = Future()
        done.set_result(getattr(self.predictor, method)(*args))
        return done


class _NetworkProcess:
    """The network's side of each step run by a forked copy of the predictor in a process of its own.

    The two sides are mostly small operations, each paying Python's overhead, and one process runs
    Python in one thread at a time: in a second thread the network's side waited for the counts'
    (the held-out book took as long as one side after the other on one 2-core Xeon). A process has
    its own interpreter. It computes in one torch thread, so every number is the one `_InOrder`
    gives in one thread; it ends when the coding does, or when this process is gone (its pipe
    closes). Only arrays cross the pipe (a torch tensor would be moved to shared memory)."""

    def __init__(self, predictor: Predictor):
        context = multiprocessing.get_context("fork")
        self.connection, theirs = context.Pipe()
        # the forked copy holds this end too, and must close it: else its pipe never closes
        self.process = context.Process(target=_serve, args=(predictor, theirs, self.connection), daemon=True,
                                       name="junglegpt network")
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with threads forks (a Jupyter kernel has several): the
            # copy only computes and uses its pipe, and its torch runs in one thread (see _serve)
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            self.process.start()
        theirs.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()  # the process's next read fails, and it returns
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()

    def submit(self, method: str, *args) -> _Reply:
        try:
            self.connection.send((method, args))
        except OSError:
            raise NetworkProcessError(_ENDED) from None
        return _Reply(self.connection)


_ENDED = "the compressor's network process ended without answering (killed, or out of memory?); nothing was written"


class _Reply:
    def __init__(self, connection):
        self.connection = connection

    def result(self) -> torch.Tensor | None:
        try:
            kind, value = self.connection.recv()
        except (EOFError, OSError):
            raise NetworkProcessError(_ENDED) from None
        if kind == "failed":
            raise NetworkProcessError(f"the compressor's network process failed: {value}; nothing was written")
        return None if value is None else torch.from_numpy(value)


def _serve(predictor: Predictor, connection, coders_end) -> None:
    """The network process: run each method asked for, send back its logits (or None). In one torch
    thread: a forked process that starts torch's pool of threads again can hang for ever (the
    pool's state was copied mid-use), and the compressor computes in one thread anyway (THREADS).
    `coders_end`: the coder's end of the pipe, which the fork copied; closed here, so that the pipe
    closes when the coder's copy does."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coder's to handle: it closes the pipe
    coders_end.close()
    while True:
        try:
            method, args = connection.recv()
        except (EOFError, OSError):  # the coding is over, or its process is gone
            return
        try:
            result = getattr(predictor, method)(*args)
            reply = ("done", None if result is None else result.numpy())
        except Exception as error:  # noqa: BLE001 - reported to the coder, which raises it
            where = traceback.extract_tb(error.__traceback__)[-1]
            reply = ("failed", f"{type(error).__name__}: {error} (at {Path(where.filename).name}:{where.lineno})")
        try:
            connection.send(reply)
        except OSError:  # the coder stopped early (a damaged file, an interrupt) and closed the pipe
            return
        if reply[0] == "failed":
            return


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
        if settings:
            self.mixer = Mixer(2, settings.mixer_lr, settings.share)  # the blend of the network and the counts
            self.product = Product(PRODUCT_START, PRODUCT_LR)
            self.recent = RecentTokens(layout.streams, self.vocab_size)
            self.final = Mixer(2, settings.mixer_lr, settings.share)  # the blend, mixed with the product
        self.prime_tail = list(prime_ids[-settings.max_order :]) if settings and settings.max_order else []
        self.nats: dict[str, list[float]] = {part: [] for part in ("network", "counts", "blend", "product", "mixture")}
        self._ran = False

    def run(self, code, overlap: bool = True) -> list[int]:
        layout = self.layout
        streams = [[] for _ in range(layout.streams)]
        real = [min(layout.length, layout.n_tokens - s * layout.length) for s in range(layout.streams)]
        # The network's side of a step (its output layer learning from the step's tokens, then its
        # next step) and the counts' side (learning, then their next distributions) need nothing
        # from each other, so they run at once, the network in a process of its own. The same
        # numbers as one after the other, sooner.
        if self._ran:
            raise RuntimeError("a Predictor runs once (its network learned in another process): make a new one")
        self._ran = True
        with _NetworkProcess(self) if overlap and FORK else _InOrder(self) as side:
            for window in dynamic.windows(layout.length):
                context = torch.full((layout.streams, 1 + window.start - window.left), self.start_id)
                for row, ids in zip(context, streams, strict=True):  # a finished stream's is padding
                    seen = ids[window.left : window.start]
                    row[1 : 1 + len(seen)] = torch.tensor(seen, dtype=torch.long)
                filled = side.submit("_window", context.numpy())
                active = [s for s in range(layout.streams) if window.start < real[s]]
                counts = self._counts(active, streams)
                logits = filled.result()
                for position in range(window.start, window.end):
                    logits = logits[: len(active)]
                    probs = self._mix(logits, counts)
                    tokens = code(probs, active)
                    following = position + 1 < window.end
                    fed = [tokens[s] if s < len(active) else self.start_id for s in range(layout.streams)]
                    network = side.submit("_network_side", tokens, fed if following else None,
                                          1 + position - window.left)
                    self._learn_tokens(probs, active, tokens, streams)
                    if following:
                        active = [s for s in active if position + 1 < real[s]]
                        counts = self._counts(active, streams)
                    logits = network.result()
        return [token for ids in streams for token in ids]

    def _window(self, context: np.ndarray) -> torch.Tensor:
        """The network's side at a window's start: the cache filled with `context`, (streams, T),
        and the logits of the window's first step."""
        self._logits = self.steps(torch.from_numpy(context), 0)
        return self._logits

    def _network_side(self, tokens: list[int], fed: list[int] | None, position: int) -> torch.Tensor | None:
        """Learn from the step's tokens (with lr > 0), then the logits of the next step (None after
        a window's last position)."""
        if self.lr > 0:
            self._learn_output(self._logits[: len(tokens)], tokens)
        self._logits = None if fed is None else self.steps(torch.tensor(fed)[:, None], position)
        return self._logits

    def _counts(self, active: list[int], streams: list[list[int]]) -> tuple | None:
        """Everything of the step that does not need the network, computed while its step runs: the
        log probabilities of the product's other parts, (4, active streams, vocabulary: the counts,
        the counts after LOWER_ORDERS tokens, the recent tokens), the counts' distributions, and
        those parts' share of the product's sum."""
        if self.counts is None:
            return None
        histories = [self.prime_tail + streams[s][-self.settings.max_order :] for s in active]
        counts = self.counts.distributions(histories, LOWER_ORDERS)
        logs = np.log(np.concatenate([counts, self.recent.distributions(active)[None]]))
        return logs, counts[0], self.product.known_scores(logs)

    def _mix(self, logits: torch.Tensor, counts: tuple | None) -> np.ndarray:
        """The step's distributions. Two stages: the blend of the network and the counts (a weighted
        average, `mixture.Mixer`), then that blend mixed the same way with the product of the
        network, the counts at three lengths of context and the recent tokens (`mixture.Product`)."""
        log_network = torch.log_softmax(logits.double(), -1).numpy()
        network = np.exp(log_network)
        if counts is None:
            return network
        logs, p_counts, known = counts
        on_network, on_counts = self.mixer.coefficients()
        blend = on_network * network + on_counts * p_counts
        product = self.product.distributions(log_network[None], known)
        on_blend, on_product = self.final.coefficients()
        self._parts = log_network, logs, blend, product
        return on_blend * blend + on_product * product

    def _learn_tokens(self, probs: np.ndarray, active: list[int], tokens: list[int], streams) -> None:
        rows = np.arange(len(active))
        self.nats["mixture"].extend((-np.log(probs[rows, tokens])).tolist())
        if self.counts is None:
            self.nats["network"].extend(self.nats["mixture"][-len(active) :])
        else:
            log_network, logs, blend, product = self._parts
            # each part's log probability of its row's token, (PRODUCT_PARTS, rows): taken part by
            # part, not from the parts' distributions stacked into one array (a copy of them all)
            of_tokens = np.concatenate([log_network[None, rows, tokens], logs[:, rows, tokens]])
            p_network, p_counts = np.exp(of_tokens[0]).tolist(), np.exp(of_tokens[1]).tolist()
            p_blend, p_product = blend[rows, tokens].tolist(), product[rows, tokens].tolist()
            for part, ps in (("blend", p_blend), ("product", p_product)):
                self.nats[part].extend(-math.log(max(p, 1e-300)) for p in ps)
            self.nats["network"].extend((-of_tokens[0]).tolist())
            self.nats["counts"].extend((-of_tokens[1]).tolist())
            for row, s, token in zip(rows, active, tokens, strict=True):
                self.counts.update(self.prime_tail + streams[s][-self.settings.max_order :], token)
                self.mixer.learn([p_network[row], p_counts[row]])
                self.final.learn([p_blend[row], p_product[row]])
            expected = np.concatenate([self.product.expected(product, log_network[None]),
                                       self.product.expected(product, logs)], axis=1)
            self.product.learn(of_tokens.T, expected)
            self.recent.update(active, tokens)
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
