"""Bits per byte is a file size: an arithmetic coder driven by a trained model.

    python -m junglegpt.compress compress   --model OUT/models/1M book.txt book.jgz [--dynamic-lr 0.03]
    python -m junglegpt.compress decompress --model OUT/models/1M book.jgz book.txt

The text is tokenized and cut into the windows of `junglegpt.dynamic` (a chunk of 128 tokens
behind up to 127 tokens of context). For each token the model gives a probability to every token
of the vocabulary; the arithmetic coder spends -log2(p) bits on the one that comes. So the file is
as long as the model's score of the text says, plus a header. With --dynamic-lr the model takes
one SGD step on each chunk after coding it, and the decompressor, having decoded the chunk, takes
the very same step: both sides adapt in lockstep.

Both sides must compute bit-identical probabilities, so both run on the CPU, in fp32, with one
thread, token by token with the same key-value cache. The header holds the model's hash, the
text's length and a CRC-32: a file made with another model is refused, and a damaged or cut
file is refused, never decoded into garbage. Decompressing needs the same model and the same
torch build (a different BLAS may round differently).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path

import torch

from . import dynamic
from .io import atomic_write_bytes

MAGIC = b"JGPTZ\x01"
HEADER = struct.Struct("<6sBB32sQQIdHH")  # magic, dynamic?, latin-1?, model sha256, bytes, tokens, crc, lr, chunk, ctx
PRECISION = 16  # probabilities are rounded to counts out of 2**16, each at least 1
STATE_BITS = 32
FULL, HALF, QUARTER = 1 << STATE_BITS, 1 << (STATE_BITS - 1), 1 << (STATE_BITS - 2)
MASK = FULL - 1


class CompressedFileError(ValueError):
    """A compressed file that cannot be decompressed here, with a message that says why."""


def model_hash(folder: Path) -> bytes:
    """SHA-256 of what decides the probabilities: the weights, the config and the tokenizer."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        path = Path(folder) / name
        digest.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return digest.digest()


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).float().eval()
    return model, AutoTokenizer.from_pretrained(folder)


def counts(logits: torch.Tensor) -> list[int]:
    """Cumulative integer frequencies (length vocabulary + 1) from one position's logits."""
    probs = torch.softmax(logits.double(), dim=-1)
    freq = (probs * ((1 << PRECISION) - len(probs))).floor().long() + 1
    return [0, *torch.cumsum(freq, 0).tolist()]


class Encoder:
    def __init__(self):
        self.low, self.high, self.pending, self.bits = 0, MASK, 0, []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        self.bits.extend([bit ^ 1] * self.pending)
        self.pending = 0

    def encode(self, cum: list[int], symbol: int) -> None:
        total, span = cum[-1], self.high - self.low + 1
        self.high = self.low + cum[symbol + 1] * span // total - 1
        self.low = self.low + cum[symbol] * span // total
        while ((self.low ^ self.high) & HALF) == 0:
            self._emit(self.low >> (STATE_BITS - 1))
            self.low, self.high = (self.low << 1) & MASK, ((self.high << 1) & MASK) | 1
        while self.low & ~self.high & QUARTER:
            self.pending += 1
            self.low = (self.low << 1) ^ HALF
            self.high = ((self.high ^ HALF) << 1) | HALF | 1

    def finish(self) -> bytes:
        self._emit(1)
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


class Decoder:
    def __init__(self, data: bytes):
        self.data, self.position = data, 0
        self.low, self.high, self.code = 0, MASK, 0
        for _ in range(STATE_BITS):
            self.code = (self.code << 1) | self._bit()

    def _bit(self) -> int:
        byte, offset = divmod(self.position, 8)
        self.position += 1
        return (self.data[byte] >> (7 - offset)) & 1 if byte < len(self.data) else 0

    def decode(self, cum: list[int]) -> int:
        import bisect

        total, span = cum[-1], self.high - self.low + 1
        value = ((self.code - self.low + 1) * total - 1) // span
        symbol = bisect.bisect_right(cum, value) - 1
        self.high = self.low + cum[symbol + 1] * span // total - 1
        self.low = self.low + cum[symbol] * span // total
        while ((self.low ^ self.high) & HALF) == 0:
            self.code = ((self.code << 1) & MASK) | self._bit()
            self.low, self.high = (self.low << 1) & MASK, ((self.high << 1) & MASK) | 1
        while self.low & ~self.high & QUARTER:
            self.code = (self.code & HALF) | ((self.code << 1) & (MASK >> 1)) | self._bit()
            self.low = (self.low << 1) ^ HALF
            self.high = ((self.high ^ HALF) << 1) | HALF | 1
        return symbol


@contextlib.contextmanager
def _one_thread():
    """Both sides compute with one thread: a different thread count can round matrix sums differently.
    (Also quiet: transformers warns about a cache argument that the platforms' older versions need.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        torch.set_num_threads(before)


def _code(model, start_id: int, n_tokens: int, lr: float, step) -> list[int]:
    """The loop both sides share: for each window, prefill the start token and the context, then
    each token of the chunk in turn; `step(cum, position)` codes (or decodes) that position's token
    and returns it. After a chunk, with lr > 0, one SGD step on it (`dynamic.learn_step`)."""
    learner, optimizer = dynamic.learner_for(model, lr, "cpu")
    ids: list[int] = []
    for window in dynamic.windows(n_tokens):
        prefix = torch.tensor([[start_id, *ids[window.left : window.start]]])
        with torch.no_grad():
            out = learner(input_ids=prefix, use_cache=True)
            for position in range(window.start, window.end):
                ids.append(step(counts(out.logits[0, -1]), position))
                if position + 1 < window.end:
                    out = learner(input_ids=torch.tensor([[ids[-1]]]), past_key_values=out.past_key_values,
                                  use_cache=True)
        if lr > 0:
            x = dynamic.window_input(torch.tensor(ids), window, start_id)
            dynamic.learn_step(learner, optimizer, dynamic.chunk_nll(learner, x, window.end - window.start))
    return ids


def _as_text(data: bytes, tokenizer) -> tuple[str, int]:
    """The text the tokenizer reads, and 0 (UTF-8) or 1 (any bytes, one character each, latin-1)."""
    for latin1, text in enumerate((_utf8(data), data.decode("latin-1"))):
        if text is not None and tokenizer.decode(tokenizer.encode(text, verbose=False)) == text:
            return text, latin1
    raise CompressedFileError("the tokenizer cannot represent this input exactly; it cannot be compressed with it")


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def compress(data: bytes, folder: Path, lr: float = 0.0) -> bytes:
    model, tokenizer = load(folder)
    text, latin1 = _as_text(data, tokenizer)
    ids = tokenizer.encode(text, verbose=False)
    encoder = Encoder()

    def code(cum, position):
        encoder.encode(cum, ids[position])
        return ids[position]

    with _one_thread():
        _code(model, tokenizer.eos_token_id, len(ids), lr, code)
    header = HEADER.pack(MAGIC, int(lr > 0), latin1, model_hash(folder), len(data), len(ids), zlib.crc32(data),
                         float(lr), dynamic.CHUNK, dynamic.CONTEXT)
    return header + encoder.finish()


def decompress(blob: bytes, folder: Path) -> bytes:
    if len(blob) < HEADER.size or not blob.startswith(MAGIC[:5]):
        raise CompressedFileError("not a file made by python -m junglegpt.compress (or it is cut short)")
    magic, _, latin1, digest, n_bytes, n_tokens, crc, lr, chunk, context = HEADER.unpack_from(blob)
    if magic != MAGIC or (chunk, context) != (dynamic.CHUNK, dynamic.CONTEXT):
        raise CompressedFileError("made by another version of junglegpt.compress; decompress it with that version")
    if digest != model_hash(folder):
        raise CompressedFileError(f"this file was compressed with another model (hash {digest.hex()[:12]}), not "
                                  f"{folder} (hash {model_hash(folder).hex()[:12]}): give that model with --model")
    model, tokenizer = load(folder)
    decoder = Decoder(blob[HEADER.size :])
    with _one_thread():
        ids = _code(model, tokenizer.eos_token_id, n_tokens, lr, lambda cum, position: decoder.decode(cum))
    text = tokenizer.decode(ids)
    data = text.encode("latin-1" if latin1 else "utf-8", errors="replace")
    if len(data) != n_bytes or zlib.crc32(data) != crc:
        raise CompressedFileError("the file is damaged or cut short: what it decodes to fails its checksum, so "
                                  "nothing was written")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m junglegpt.compress", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("compress", "decompress"))
    parser.add_argument("--model", required=True, type=Path, help="a trained model's folder, e.g. OUT/models/1M")
    parser.add_argument("--dynamic-lr", type=float, default=0.0,
                        help="compress: learn from each chunk after coding it, with SGD at this rate (0: static)")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not (args.model / "config.json").exists():
        parser.error(f"--model {args.model}: no trained model there (run notebook 03, or give OUT/models/<size>)")
    if not args.input.is_file():
        parser.error(f"{args.input}: no such file")
    started = time.perf_counter()
    try:
        data = args.input.read_bytes()
        result = (compress(data, args.model, args.dynamic_lr) if args.action == "compress"
                  else decompress(data, args.model))
    except CompressedFileError as err:
        print(f"error: {args.input}: {err}", file=sys.stderr)
        return 1
    atomic_write_bytes(args.output, result)
    seconds = time.perf_counter() - started
    original = len(result) if args.action == "decompress" else len(data)
    packed = len(data) if args.action == "decompress" else len(result)
    print(f"{args.action}ed {args.input} -> {args.output}: {original:,} bytes <-> {packed:,} bytes "
          f"({8 * packed / max(original, 1):.3f} bits per byte) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
