"""Bytes after tokens: the compressor's token distribution mixed, bit by bit, with byte-level models.

An experiment (issue 32's stretch), measured by benchmarks/byte_mixing.py; the compressor does
not use it yet. PPMd and zpaq predict bytes, from contexts of earlier bytes; the network and the
token counts predict tokens. To mix the two, a token is coded the way a byte coder codes bytes:
as a path of yes-or-no decisions.

1. **The token's path** (`TokenTrie`, exact). Sort the vocabulary's spellings; the tokens that
   start with a given prefix are then a contiguous run. A token is spelled byte by byte, each byte
   bit by bit from the highest, and between bytes one more decision where the prefix is itself a
   token that longer tokens extend: stop here, or go on. Each decision's probability under the
   token distribution is the mass of the run it keeps over the mass of the run it splits, so the
   path's probabilities multiply to the token's own (over the spelled tokens: the special ones,
   which a text never holds, are left out). A decision whose run has only one side is certain
   and costs nothing: the byte models never pay for spellings no token has.
2. **Byte models** (`_mix_all`). For each bit, context models over the stream's earlier bytes
   (orders 0 to 6 and the current word: adaptive probabilities in one hashed table, a check byte
   per slot so that a collision starts afresh), and a match model (the longest earlier repeat of
   the last bytes predicts the byte that followed it). All are primed on the training text, as
   zpaq is in notebook 04, and learn from every bit they see.
3. **Mixing, in paq8's way.** Inputs are log-odds (stretch(p) = ln(p / (1 - p))): the byte
   models', the token mixture's, and its parts' (the network, the counts, the product: the mixer
   may trust each differently in each context). Three mixers, each with a weight set per small
   context (the token's confidence and the match's length; the byte's place in the token and the
   bit's in the byte; the bits of the byte so far), give squash(weights . inputs); a second layer
   mixes their outputs; each takes a gradient step on the bit's code length. Three adaptive
   probability maps (APM, or SSE: a learned correction of a probability in a context) in the
   contexts of the byte so far and of the last one and two bytes take a share of the result.
4. **Stop or go on.** A STOP decision mixes the token mixture's probability with the byte
   models' probability that the next byte is one that continues the prefix into a longer token
   (summed over those bytes, from the context models mixed without the token distribution),
   then an APM per prefix.

Every decision is predicted before anything learns from it, and the predictions use only what a
decoder has decoded (the stream's earlier bytes, the bits of this token so far), so a coder
could reproduce them. Costs are counted with 16-bit probabilities, as a binary arithmetic coder
would use them. With numba installed the loop is compiled (seconds for a book); without it, the
same code runs as Python (right, and slow: fine for the tests' short texts).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

try:
    from numba import njit
except ImportError:  # the same code, as Python

    def njit(*args, **kwargs):
        return args[0] if args and callable(args[0]) else (lambda function: function)


BIT, STOP = 0, 1  # the two kinds of decision on a token's path


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte-level BPE spells each byte as a printable character: the printable ones as
    themselves, the other 68 as the characters from 256 up, in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


class TokenTrie:
    """The vocabulary's spellings sorted, and each token's path of decisions over them."""

    def __init__(self, spellings: list[bytes | None]):
        ids = [i for i, s in enumerate(spellings) if s]  # special tokens (None) have no path
        self.order = np.array(sorted(ids, key=lambda i: spellings[i]), dtype=np.int64)
        self.spellings = spellings
        self._sorted = [spellings[i] for i in self.order]
        twins = [a for a, b in zip(self._sorted, self._sorted[1:], strict=False) if a == b]
        if twins:  # two tokens on one path: a decoder could not tell them apart
            raise ValueError(f"tokens spelled alike ({twins[0]!r}): a token's path must be its own")
        self._paths: dict[int, tuple[np.ndarray, ...]] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TokenTrie:
        """Spellings of a byte-level BPE tokenizer (GPT-2's alphabet of 256 printable characters)."""
        to_byte = {char: byte for byte, char in _byte_alphabet().items()}
        special = set(tokenizer.all_special_ids)
        spellings = []
        for i in range(len(tokenizer)):
            piece = tokenizer.convert_ids_to_tokens(i)
            if i not in special and not set(piece) <= to_byte.keys():
                raise ValueError(f"token {i} ({piece!r}) is not spelled in GPT-2's byte alphabet: the byte stage "
                                 "needs a byte-level BPE tokenizer like notebook 02's")
            spellings.append(None if i in special else bytes(to_byte[c] for c in piece))
        return cls(spellings)

    def _run(self, prefix: bytes) -> tuple[int, int]:
        """[lo, hi) in sorted order: the tokens that start with `prefix`."""
        lo = bisect.bisect_left(self._sorted, prefix)
        hi = lo
        while hi < len(self._sorted) and self._sorted[hi].startswith(prefix):
            hi += 1
        return lo, hi

    def path(self, token: int) -> tuple[np.ndarray, ...]:
        """The token's decisions in order: kind, lo, mid, hi, bit, each an array. A decision splits
        the run [lo, hi) of sorted tokens into [lo, mid) (bit 0) and [mid, hi) (bit 1). For a BIT
        decision the bit is the spelling's; for a STOP decision 1 means the token goes on, 0 that
        it ends (the prefix's own token is the run's first)."""
        if token in self._paths:
            return self._paths[token]
        spelling = self.spellings[token]
        if not spelling:
            raise ValueError(f"token {token} is a special token: no spelling to code")
        rows = []
        for j in range(len(spelling) + 1):
            lo, hi = self._run(spelling[:j])
            if j and self._sorted[lo] == spelling[:j] and hi > lo + 1:  # a token here, and longer ones
                rows.append((STOP, lo, lo + 1, hi, int(j < len(spelling))))
            if j == len(spelling):
                break
            if self._sorted[lo] == spelling[:j]:
                lo += 1  # the prefix's own token is not among those that go on
            nexts = [s[j] for s in self._sorted[lo:hi]]  # ascending
            value = spelling[j]
            for k in range(7, -1, -1):
                high = value >> (k + 1)  # the bits above k, already decided
                split = ((high << 1) | 1) << k
                a = lo + bisect.bisect_left(nexts, high << (k + 1))
                b = lo + bisect.bisect_left(nexts, (high + 1) << (k + 1))
                mid = lo + bisect.bisect_left(nexts, split)
                rows.append((BIT, a, mid, b, (value >> k) & 1))
        kind, lo, mid, hi, bit = (np.array(column, dtype=np.int64) for column in zip(*rows, strict=True))
        self._paths[token] = kind, lo, mid, hi, bit
        return self._paths[token]

    def continuations(self) -> np.ndarray:
        """(sorted tokens, 256) booleans: the bytes that can follow each token's spelling within a
        longer token (what a STOP decision's "go on" means, byte-wise)."""
        allowed = np.zeros((len(self._sorted), 256), dtype=np.bool_)
        for i, spelling in enumerate(self._sorted):
            lo, hi = self._run(spelling)
            for longer in self._sorted[lo + 1 : hi]:
                allowed[i, longer[len(spelling)]] = True
        return allowed

    def decisions(self, probs: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, ...]:
        """For one step's distributions (rows, vocabulary) and tokens: every decision of every
        token's path, in order, as kind, p1 (the distribution's probability of bit 1), bit and
        certain (a run with one side), plus each token's number of decisions."""
        paths = [self.path(t) for t in tokens]
        counts = np.array([len(p[0]) for p in paths])
        kind, lo, mid, hi, bit = (np.concatenate([p[c] for p in paths]) for c in range(5))
        rows = np.repeat(np.arange(len(tokens)), counts)
        sorted_probs = probs[:, self.order]
        cum = np.zeros((len(tokens), len(self.order) + 1))
        np.cumsum(sorted_probs, axis=1, out=cum[:, 1:])
        whole = cum[rows, hi] - cum[rows, lo]
        # a run the distribution gives no mass at all: even odds, not 0/0 (a NaN would spread
        # through the mixers to every later cost)
        p1 = np.divide(cum[rows, hi] - cum[rows, mid], whole, out=np.full_like(whole, 0.5), where=whole > 0)
        certain = (mid == lo) | (mid == hi)
        p1[certain] = (mid == lo)[certain]  # exactly 1 or 0, whatever the rounding
        return kind, p1, bit, certain, counts, lo


@dataclass(frozen=True)
class Settings:
    """The byte stage's settings. The mixers' rate and the APMs' share were chosen on the validation
    text with the full-profile 1M (benchmarks/byte_mixing.py's grid); the rest were set once. The
    tables hold 2**table_bits counters (7 bytes each: 117 MB at 24 bits; 26 bits gained 0.0007
    bits per byte on the held-out book for four times the memory)."""

    mixer_lr: float = 0.002
    limit: int = 255  # a context's adaptation rate falls as 1/(n + 1.5) down to 1/(limit + 1.5)
    apm_rate: float = 0.02
    apm_weight: float = 0.25  # the APMs' share of the final probability (0: no APM stage)
    table_bits: int = 24
    min_match: int = 6
    stop_bytes: bool = True  # the byte models' say in STOP decisions (off: the token mixture's alone)


MIXERS = 3  # first-layer mixers, selected by: the token distribution's confidence and the match's length;
# the byte's place in the token and the bit's in the byte; the bits of the byte so far
FINAL_LR = 0.0005
ORDERS = 8  # context models: orders 0 to 6, and the word so far
WORD = 8  # where a stream's history keeps the hash of its current word, after its last 8 bytes
MATCH, TOKEN = ORDERS, ORDERS + 1  # the mixer's inputs after the context models'; then the token
# mixture's parts, if given, and a bias


@njit(cache=True)
def _stretch(p):
    return math.log(p / (1.0 - p))


@njit(cache=True)
def _log_odds(p, eps, bound):
    """A mixer's input: stretch(p), p kept within [eps, 1 - eps] and the result within +-bound."""
    return min(max(_stretch(min(max(p, eps), 1.0 - eps)), -bound), bound)


@njit(cache=True)
def _count(probs, seen, slot, bit, limit):
    """A counter learns a bit: its probability moves 1/(n + 1.5) of the way there, n capped at limit."""
    n = seen[slot]
    probs[slot] += (bit - probs[slot]) / (n + 1.5)
    if n < limit:
        seen[slot] = n + 1


@njit(cache=True)
def _match_key(history, min_match):
    """The hash of the last min_match bytes of a history (most recent first)."""
    key = 0
    for j in range(min_match):
        key = _hash(key, history[j])
    return key


@njit(cache=True)
def _squash(x):
    if x > 30.0:
        x = 30.0
    if x < -30.0:
        x = -30.0
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True)
def _quantise(p):
    """A probability as a 16-bit coder holds it: in [1, 65535] / 65536."""
    q = math.floor(p * 65536.0 + 0.5)
    return min(max(q, 1.0), 65535.0) / 65536.0


@njit(cache=True)
def _apm(table, row, p, bit, rate, learn):
    """An adaptive probability map: p's log-odds placed between two of 33 knots in [-8, 8], the
    knots' values interpolated; with `learn`, both knots move toward the bit."""
    x = min(max(_stretch(p), -7.999), 7.999)
    position = (x + 8.0) * 2.0
    k = int(position)
    w = position - k
    out = table[row, k] * (1.0 - w) + table[row, k + 1] * w
    if learn:
        table[row, k] += rate * (1.0 - w) * (bit - table[row, k])
        table[row, k + 1] += rate * w * (bit - table[row, k + 1])
    return min(max(out, 1e-6), 1.0 - 1e-6)


@njit(cache=True)
def _bits_done(c0):
    """How many bits of the byte c0 holds (c0 is 1, then 1 followed by the bits so far)."""
    n = 0
    while c0 > 1:
        c0 >>= 1
        n += 1
    return n


@njit(cache=True)
def _hash(a, b):
    h = (a * 0x2F0B4C27 + b * 0x6D2C5E31 + 0x1F3D5B79) & 0xFFFFFFFF
    return (h ^ (h >> 15)) & 0xFFFFFFFF


@njit(cache=True)
def _find(context, c0, mask, checks, probs, seen):
    """The slot of a context's counter for the bits of the byte so far (c0). Another context's
    counter in that slot (its check byte differs) is replaced by a fresh one: a collision starts
    from nothing rather than from a stranger's counts."""
    h = _hash(context, c0)
    slot = h & mask
    check = _hash(h, 7) & 255
    if checks[slot] != check:
        checks[slot] = check
        probs[slot] = 0.5
        seen[slot] = 0
    return slot


@njit(cache=True)
def _peek(context, c0, mask, checks, probs):
    """A counter's probability without taking its slot over (0.5 if another context holds it)."""
    h = _hash(context, c0)
    slot = h & mask
    return probs[slot] if checks[slot] == (_hash(h, 7) & 255) else 0.5


@njit(cache=True)
def _bytes_only(weights, c0, hashes, mask, checks, probs):
    """The context models alone, mixed (weights by the bits of the byte so far): p(bit = 1)."""
    dot = weights[c0, ORDERS] * 0.25
    for m in range(ORDERS):
        dot += weights[c0, m] * _log_odds(_peek(hashes[m], c0, mask, checks, probs), 1e-4, 8.0)
    return _squash(dot)


@njit(cache=True)
def _next_byte_in(allowed, weights, hashes, mask, checks, probs):
    """The context models' probability that the next byte is one of `allowed` (256 booleans)."""
    total = 0.0
    for byte in range(256):
        if allowed[byte]:
            p, c0 = 1.0, 1
            for k in range(7, -1, -1):
                bit = (byte >> k) & 1
                p1 = _bytes_only(weights, c0, hashes, mask, checks, probs)
                p *= p1 if bit else 1.0 - p1
                c0 = (c0 << 1) | bit
            total += p
    return min(max(total, 1e-6), 1.0 - 1e-6)


@njit(cache=True)
def _learn_bytes_only(weights, c0, inputs, bit, rate):
    dot = weights[c0, ORDERS] * 0.25
    for m in range(ORDERS):
        dot += weights[c0, m] * inputs[m]
    error = bit - _squash(dot)
    for m in range(ORDERS):
        weights[c0, m] += rate * error * inputs[m]
    weights[c0, ORDERS] += rate * error * 0.25


@njit(cache=True)
def _contexts(history, out):
    """The context models' hashes at a byte boundary, from a stream's `history` (its last 8 bytes,
    the most recent first, then the hash of the word so far): orders 0 to 6, and the word."""
    h = 0
    out[0] = _hash(0, 0)
    for order in range(1, 7):
        h = _hash(h, history[order - 1] + 1)
        out[order] = _hash(h, order)
    out[7] = _hash(history[WORD], 99)


@njit(cache=True)
def _push(history, byte):
    """A stream's history after `byte` (a letter extends the word, anything else ends it)."""
    history[1:WORD] = history[: WORD - 1].copy()
    history[0] = byte
    is_letter = (65 <= byte <= 90) or (97 <= byte <= 122)
    history[WORD] = _hash(history[WORD], byte | 32) if is_letter else 0


@njit(cache=True)
def _mix_all(kinds, p1s, parts, bits, certain, token_stream, token_counts, stop_rows, continuations, prime, n_streams,
             stream_bytes, mixer_lr, limit, apm_rate, apm_weight, table_bits, min_match, stop_bytes):
    mask = (1 << table_bits) - 1
    probs = np.full(1 << table_bits, 0.5, dtype=np.float32)
    seen = np.zeros(1 << table_bits, dtype=np.uint16)
    checks = np.zeros(1 << table_bits, dtype=np.uint8)
    match_bits = 20
    last_at = np.full(1 << match_bits, -1, dtype=np.int64)  # a hash of min_match bytes -> the position after them
    # one buffer: the priming text, then each stream's bytes in a region of its own
    base = np.zeros(n_streams + 1, dtype=np.int64)
    base[0] = len(prime)
    for s in range(n_streams):
        base[s + 1] = base[s] + stream_bytes[s] + 1
    buffer = np.zeros(base[n_streams], dtype=np.int64)
    written = np.zeros(base[n_streams], dtype=np.bool_)
    length = np.zeros(n_streams, dtype=np.int64)
    history = np.zeros((n_streams, WORD + 1), dtype=np.int64)  # each stream's last bytes, and its word
    match_at = np.full(n_streams, -1, dtype=np.int64)
    match_len = np.zeros(n_streams, dtype=np.int64)
    match_probs = np.full((64, 2), 0.5)  # by match length (capped), expected bit
    match_seen = np.zeros((64, 2), dtype=np.int32)
    # first layer: one mixer per selector, each with a weight set per value of its context
    n_parts = parts.shape[1]
    n_inputs = TOKEN + n_parts + 2
    bias = n_inputs - 1
    weights = np.zeros((MIXERS, 256, n_inputs))
    weights[:, :, TOKEN] = 1.0  # start as the token distribution alone
    select = np.zeros(MIXERS, dtype=np.int64)
    outputs = np.zeros(MIXERS)
    final = np.full(MIXERS, 1.0 / MIXERS)  # the second layer: a mixer of the first layer's outputs
    in_token = np.zeros(n_streams, dtype=np.int64)  # bytes of the current token so far
    bytes_only = np.zeros((256, ORDERS + 1))  # the context models mixed without the token distribution
    # the STOP decisions' mixer: the token distribution, its parts, the bytes, a bias
    stop_weights = np.zeros((4, n_parts + 3))
    stop_weights[:, 0] = 1.0
    stop_inputs = np.zeros(n_parts + 3)
    apm_order0 = np.empty((256, 33))
    apm_order1 = np.empty((65536, 33))
    apm_order2 = np.empty((1 << 18, 33))
    apm_stop = np.empty((len(continuations), 33))  # a row per prefix token
    for k in range(33):
        knot = _squash((k - 16) / 2.0)
        apm_order0[:, k] = knot
        apm_order1[:, k] = knot
        apm_order2[:, k] = knot
        apm_stop[:, k] = knot
    hashes = np.zeros(ORDERS, dtype=np.int64)
    slots = np.zeros(ORDERS, dtype=np.int64)
    inputs = np.zeros(n_inputs)
    costs = np.zeros(len(kinds))

    # The priming text: tables, matches and histories learn; nothing is coded.
    prime_history = np.zeros(WORD + 1, dtype=np.int64)
    for i in range(len(prime)):
        _contexts(prime_history, hashes)
        byte = prime[i]
        c0 = 1
        for k in range(7, -1, -1):
            bit = (byte >> k) & 1
            for m in range(ORDERS):
                slot = _find(hashes[m], c0, mask, checks, probs, seen)
                inputs[m] = _log_odds(probs[slot], 1e-4, 8.0)
                _count(probs, seen, slot, bit, limit)
            _learn_bytes_only(bytes_only, c0, inputs, bit, mixer_lr)
            c0 = (c0 << 1) | bit
        buffer[i] = byte
        written[i] = True
        _push(prime_history, byte)
        if i + 1 >= min_match:
            last_at[_match_key(prime_history, min_match) & ((1 << match_bits) - 1)] = i + 1
    for s in range(n_streams):
        history[s] = prime_history

    d = 0
    c0s = np.ones(n_streams, dtype=np.int64)
    for t in range(len(token_stream)):
        s = token_stream[t]
        in_token[s] = 0
        for _ in range(token_counts[t]):
            p_token = p1s[d]
            bit = bits[d]
            if kinds[d] == 1:  # STOP: the token distribution, and the bytes' odds of a byte that goes on
                _contexts(history[s], hashes)
                goes_on = 0.5
                if stop_bytes:
                    goes_on = _next_byte_in(continuations[stop_rows[d]], bytes_only, hashes, mask, checks, probs)
                stop_inputs[0] = _log_odds(p_token, 1e-6, 12.0)
                for j in range(n_parts):
                    stop_inputs[1 + j] = _log_odds(parts[d, j], 1e-6, 12.0)
                stop_inputs[n_parts + 1] = _stretch(goes_on)
                stop_inputs[n_parts + 2] = 0.25
                row = min(int(abs(stop_inputs[0]) / 2.0), 3)
                dot = 0.0
                for i in range(n_parts + 3):
                    dot += stop_weights[row, i] * stop_inputs[i]
                p_mixed = _squash(dot)
                p = p_mixed
                if apm_weight > 0:
                    refined = _apm(apm_stop, stop_rows[d], p, bit, apm_rate, True)
                    p = (1.0 - apm_weight) * p + apm_weight * refined
                q = _quantise(p)
                costs[d] = -math.log2(q if bit else 1.0 - q)
                for i in range(n_parts + 3):
                    stop_weights[row, i] += mixer_lr * (bit - p_mixed) * stop_inputs[i]
                d += 1
                continue
            c0 = c0s[s]
            if c0 == 1:
                _contexts(history[s], hashes)
            for m in range(ORDERS):
                slots[m] = _find(hashes[m], c0, mask, checks, probs, seen)
                inputs[m] = _log_odds(probs[slots[m]], 1e-4, 8.0)
            # the match model: the byte that followed the last repeat, if this byte's bits agree so far
            expected = -1
            length_bucket = 0
            if match_len[s] > 0 and written[match_at[s]]:
                predicted = buffer[match_at[s]]
                done_bits = _bits_done(c0)
                if ((predicted | 256) >> (8 - done_bits)) == c0:
                    expected = (predicted >> (7 - done_bits)) & 1
                    length_bucket = min(match_len[s], 63)
            if expected >= 0:
                pm = min(max(match_probs[length_bucket, expected], 1e-4), 1.0 - 1e-4)
                inputs[MATCH] = _stretch(pm)
            else:
                inputs[MATCH] = 0.0
            inputs[TOKEN] = _log_odds(p_token, 1e-6, 12.0)
            for j in range(n_parts):
                inputs[TOKEN + 1 + j] = _log_odds(parts[d, j], 1e-6, 12.0)
            inputs[bias] = 0.25
            confidence = min(int(abs(inputs[TOKEN]) / 2.0), 3)
            select[0] = confidence * 9 + (0 if expected < 0 else 1 + min(length_bucket // 8, 7))
            select[1] = min(in_token[s], 3) * 8 + _bits_done(c0)
            select[2] = c0
            dot2 = 0.0
            for k in range(MIXERS):
                dot = 0.0
                for i in range(n_inputs):
                    dot += weights[k, select[k], i] * inputs[i]
                outputs[k] = min(max(dot, -12.0), 12.0)
                dot2 += final[k] * outputs[k]
            p_mixed = _squash(dot2)
            p = p_mixed
            if apm_weight > 0:
                p_a = _apm(apm_order0, c0, p_mixed, bit, apm_rate, not certain[d])
                p_b = _apm(apm_order1, c0 | (history[s, 0] << 8), p_mixed, bit, apm_rate, not certain[d])
                row2 = _hash(_hash(history[s, 0], history[s, 1]), c0) & ((1 << 18) - 1)
                p_c = _apm(apm_order2, row2, p_mixed, bit, apm_rate, not certain[d])
                p = (1.0 - apm_weight) * p_mixed + apm_weight * (p_a + p_b + p_c) / 3.0
            if not certain[d]:
                q = _quantise(p)
                costs[d] = -math.log2(q if bit else 1.0 - q)
                error = bit - p_mixed
                for k in range(MIXERS):
                    error_k = bit - _squash(outputs[k])
                    for i in range(n_inputs):
                        weights[k, select[k], i] += mixer_lr * error_k * inputs[i]
                    final[k] += FINAL_LR * error * outputs[k]
            # every bit teaches the byte models, certain ones too (a decoder knows them as well)
            _learn_bytes_only(bytes_only, c0, inputs, bit, mixer_lr)
            for m in range(ORDERS):
                _count(probs, seen, slots[m], bit, limit)
            if expected >= 0:
                _count(match_probs[length_bucket], match_seen[length_bucket], expected, int(bit == expected), limit)
            c0 = (c0 << 1) | bit
            if c0 >= 256:  # a whole byte: into the stream's history and the match model
                byte = c0 & 255
                at = base[s] + length[s]
                buffer[at] = byte
                written[at] = True
                length[s] += 1
                in_token[s] += 1
                _push(history[s], byte)
                if match_len[s] > 0 and written[match_at[s]] and buffer[match_at[s]] == byte:
                    match_len[s] += 1
                    match_at[s] += 1
                else:
                    match_len[s] = 0
                key = _match_key(history[s], min_match) & ((1 << match_bits) - 1)
                if match_len[s] == 0 and last_at[key] >= 0:
                    candidate = last_at[key]
                    n = 0
                    while n < 8 and candidate - 1 - n >= 0 and buffer[candidate - 1 - n] == history[s, n]:
                        n += 1
                    if n >= min_match:
                        match_len[s] = n
                        match_at[s] = candidate
                last_at[key] = at + 1
                c0 = 1
            c0s[s] = c0
            d += 1
    return costs


def mix(kinds, p1s, bits, certain, token_stream, token_counts, stop_rows, continuations, prime: bytes,
        n_streams: int, settings: Settings = Settings(), parts: np.ndarray | None = None) -> np.ndarray:
    """Each decision's cost in bits after the byte stage (0 for a certain one), in the order given:
    the tokens in coding order (`token_stream[t]` the stream of token t, `token_counts[t]` its
    number of decisions), their decisions concatenated, as `TokenTrie.decisions` gives them
    (kinds, p1s, bits, certain; `stop_rows` its lo: a STOP decision's prefix token, in sorted
    order). `parts`: (decisions, parts) more probabilities of bit 1 for the mixer, e.g. from the
    parts of the token mixture; `continuations`: `TokenTrie.continuations()`; `prime`: the text
    the byte models read first. The compiled loop checks no index, so everything is checked here."""
    kinds, bits, token_stream, token_counts, stop_rows = (
        np.asarray(a, np.int64) for a in (kinds, bits, token_stream, token_counts, stop_rows))
    p1s, certain, continuations = np.asarray(p1s, np.float64), np.asarray(certain, np.bool_), np.asarray(
        continuations, np.bool_)
    parts = np.zeros((len(p1s), 0)) if parts is None else np.asarray(parts, np.float64)
    decisions = len(kinds)
    problems = [
        (len(token_stream) != len(token_counts), "a stream and a number of decisions for every token"),
        (token_counts.sum() != decisions or (token_counts < 0).any(), "the tokens' decisions add up to all of them"),
        (any(len(a) != decisions for a in (p1s, bits, certain, stop_rows, parts)), "one of each per decision"),
        (len(token_stream) and not 0 <= token_stream.min() <= token_stream.max() < n_streams,
         f"streams numbered 0 to {n_streams - 1}"),
        (not ((stop_rows[kinds == STOP] >= 0) & (stop_rows[kinds == STOP] < len(continuations))).all(),
         "a STOP decision's row among the continuations'"),
        (not 1 <= settings.min_match <= WORD, f"a match of 1 to {WORD} bytes"),
        (not np.isfinite(p1s).all() or not np.isfinite(parts).all(), "probabilities that are numbers"),
    ]
    wrong = [what for bad, what in problems if bad]
    if wrong:
        raise ValueError(f"bytemix.mix wants {wrong[0]}")
    # each stream's bytes: its BIT decisions, eight a byte (its buffer's size)
    stream_bytes = np.bincount(np.repeat(token_stream, token_counts)[kinds == BIT], minlength=n_streams) // 8
    return _mix_all(kinds, p1s, parts, bits, certain, token_stream, token_counts, stop_rows, continuations,
                    np.frombuffer(prime, np.uint8).astype(np.int64), n_streams, stream_bytes, settings.mixer_lr,
                    settings.limit, settings.apm_rate, settings.apm_weight, settings.table_bits,
                    settings.min_match, settings.stop_bytes)
