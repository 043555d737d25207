"""Baselines for the validation text, all in bits per UTF-8 byte, all fitted on the training text only.

- a byte unigram model (how far do letter frequencies alone get you?);
- an interpolated Kneser-Ney n-gram model on the project's tokens (the best classical LM);
- gzip, bz2 and lzma used as compressors that have read the training text first;
- PPMd, the context-mixing compressor behind 7-Zip's best text mode, likewise, with its model order
  chosen on a held-back part of the training text, never on validation.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import lzma
import math
from collections.abc import Sequence

import pyppmd


def byte_unigram_bpb(train: bytes, val: bytes) -> float:
    """Cross-entropy of `val` under `train`'s byte frequencies, add-one smoothed over all 256 bytes."""
    counts = collections.Counter(train)
    total = len(train) + 256
    bits = -sum(math.log2((counts[b] + 1) / total) for b in val)
    return bits / len(val)


COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
    "bz2": lambda data: bz2.compress(data, compresslevel=9),
    "lzma": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
}


def compressor_bpb(name: str, train: bytes, val: bytes) -> float:
    """Bits per byte that compressor `name` spends on `val` after having seen `train`.

    Measured as size(train + val) - size(train): the extra bytes the compressed file needs for the
    validation text. gzip only looks 32 KB back, so it can use little of the training text; bz2
    works on 900 KB blocks and lzma on a large dictionary, so they use all of it.
    """
    compress = COMPRESSORS[name]
    extra = len(compress(train + val)) - len(compress(train))
    return 8 * extra / len(val)


PPMD_ORDERS = (2, 3, 4, 5, 6, 8, 10, 12, 16)
PPMD_MEMORY = 256 << 20  # bytes: ample for a few hundred kilobytes of text, so the model is never reset


def ppmd_size(data: bytes, order: int) -> int:
    """Bytes of PPMd (variant H, as 7-Zip uses it) output for `data`, with model order `order`."""
    encoder = pyppmd.Ppmd7Encoder(order, PPMD_MEMORY)
    return len(encoder.encode(data) + encoder.flush())


def ppmd_bpb(train: bytes, val: bytes, order: int) -> float:
    """Bits per byte that PPMd spends on `val` after having read `train` (measured like `compressor_bpb`)."""
    return 8 * (ppmd_size(train + val, order) - ppmd_size(train, order)) / len(val)


def ppmd_static_bpb(train: bytes, text: bytes, order: int, chunk_bytes: int = 1024) -> float:
    """PPMd scored frozen, as our models are scored statically: for each `chunk_bytes` piece of `text`,
    a fresh PPMd that has read `train` (and nothing of `text`), so it never learns while it reads.
    Beside `ppmd_bpb` (which keeps learning) it shows what adapting is worth to PPMd."""
    base = ppmd_size(train, order)
    extra = sum(ppmd_size(train + text[i : i + chunk_bytes], order) - base for i in range(0, len(text), chunk_bytes))
    return 8 * extra / len(text)


def zpaq_size(data: bytes, method: int = 5) -> int | None:
    """Bytes of a zpaq archive (context mixing, `-m5`) holding `data`; None where the `zpaq` program
    is not installed (Kaggle, Colab: it is optional there; ./run_tests.sh installs it)."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    if shutil.which("zpaq") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "t").write_bytes(data)
        subprocess.run(["zpaq", "a", "a.zpaq", "t", f"-m{method}"], cwd=folder, check=True, capture_output=True)
        return (Path(folder) / "a.zpaq").stat().st_size


def zpaq_bpb(train: bytes, text: bytes, method: int = 5) -> float | None:
    """Bits per byte that zpaq spends on `text` after having read `train` (measured like
    `compressor_bpb`); None where zpaq is not installed."""
    with_text, alone = zpaq_size(train + text, method), zpaq_size(train, method)
    return None if alone is None else 8 * (with_text - alone) / len(text)


def ppmd_order_study(train: bytes, val: bytes, held_back: float = 0.1) -> tuple[int, list[dict]]:
    """Choose PPMd's order without looking at `val`, and score every order on both.

    The last `held_back` of the training text plays validation for the choice: each order reads the
    rest and is scored on it. Returns (the chosen order, one row per order with both scores).
    """
    cut = int(len(train) * (1 - held_back))
    rows = [{"order": order, "held_back_bpb": ppmd_bpb(train[:cut], train[cut:], order),
             "val_bpb": ppmd_bpb(train, val, order)} for order in PPMD_ORDERS]
    return min(rows, key=lambda row: row["held_back_bpb"])["order"], rows


class KneserNey:
    """Interpolated Kneser-Ney n-gram model over token ids, with one absolute discount per order.

    The highest order uses counts; lower orders use continuation counts (in how many different
    contexts a token follows its shorter history), which is what makes Kneser-Ney better than plain
    back-off. The lowest order is interpolated with a uniform distribution over the vocabulary, so no
    token ever has zero probability.
    """

    def __init__(self, tokens: Sequence[int], order: int, vocab_size: int, discount: float = 0.75, bos: int = 0):
        if order < 1:
            raise ValueError("order must be at least 1")
        self.order, self.vocab_size, self.discount, self.bos = order, vocab_size, discount, bos
        padded = [bos] * (order - 1) + list(tokens)
        # counts[k][(history, token)] for histories of length k; highest order: real counts.
        self.counts = [collections.Counter() for _ in range(order)]
        top = order - 1
        for i in range(order - 1, len(padded)):
            self.counts[top][(tuple(padded[i - top : i]), padded[i])] += 1
        # Lower orders: continuation counts, N1+(. history token).
        for k in range(top - 1, -1, -1):
            for history, token in self.counts[k + 1]:
                self.counts[k][(history[1:], token)] += 1
        self.history_totals = [collections.Counter() for _ in range(order)]
        self.history_types = [collections.Counter() for _ in range(order)]
        for k in range(order):
            for (history, _), c in self.counts[k].items():
                self.history_totals[k][history] += c
                self.history_types[k][history] += 1

    def prob(self, history: Sequence[int], token: int) -> float:
        history = tuple(history)[-(self.order - 1) :] if self.order > 1 else ()
        history = (self.bos,) * (self.order - 1 - len(history)) + history
        p = 1.0 / self.vocab_size
        for k in range(self.order):
            h = history[len(history) - k :] if k else ()
            total = self.history_totals[k][h]
            if total == 0:
                continue  # unseen history: keep the lower order's estimate
            c = self.counts[k][(h, token)]
            p = max(c - self.discount, 0) / total + self.discount * self.history_types[k][h] / total * p
        return p

    def total_nats(self, tokens: Sequence[int]) -> float:
        padded = [self.bos] * (self.order - 1) + list(tokens)
        n = self.order - 1
        return -sum(math.log(self.prob(padded[i - n : i], padded[i])) for i in range(n, len(padded)))
