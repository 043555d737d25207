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
file is refused, never decoded into garbage. Every header field is checked before decoding (a
damaged token count would otherwise decode for days before the CRC could say so). Decompressing
needs the same model and the same torch build (a different BLAS may round differently).

The command never overwrites its input, nor an existing file unless --force, and checks the
output path before the work; it shows its progress on stderr (--quiet: none). The functions
`compress` and `decompress` print nothing unless asked (progress=True).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import math
import os
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import torch

from . import dynamic
from .io import atomic_write_bytes

FORMAT_VERSION = 1
MAGIC = b"JGPTZ" + bytes([FORMAT_VERSION])
HEADER = struct.Struct("<6sBB32sQQIdHH")  # the fields of Header, in order


class Header(NamedTuple):
    magic: bytes
    dynamic: int  # 1 if the model learned while coding (lr > 0)
    latin1: int  # 0: the bytes were read as UTF-8; 1: as latin-1 (any bytes, one character each)
    model_sha256: bytes  # model_hash of the model folder
    n_bytes: int
    n_tokens: int
    crc: int  # CRC-32 of the original bytes
    lr: float
    chunk: int
    context: int


PRECISION = 16  # probabilities are rounded to counts out of 2**16, each at least 1
STATE_BITS = 32
FULL, HALF, QUARTER = 1 << STATE_BITS, 1 << (STATE_BITS - 1), 1 << (STATE_BITS - 2)
MASK = FULL - 1
# Learning while coding: SGD steps, the gradient clipped to norm 1 (dynamic.GRAD_CLIP). Notebook 04
# picks from 0.003 to 0.1, so 1 leaves room; on the smoke run's 1M, 30 still coded (worse) and 1e6
# made the predictions NaN at once (which `counts` refuses, rather than code garbage).
MAX_DYNAMIC_LR = 1.0


class CompressError(ValueError):
    """Something the compressor cannot use (a learning rate, a model folder, an input), with a
    message that names it and says what to do."""


class CompressedFileError(CompressError):
    """A compressed file that cannot be decompressed here, with a message that says why."""


def learning_rate_problem(lr: float) -> str | None:
    """Why `lr` cannot be the rate of learning while coding, or None."""
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 <= lr <= MAX_DYNAMIC_LR):
        return (f"choose a number from 0 (static: no learning) to {MAX_DYNAMIC_LR:g} "
                "(notebook 04 picks one of 0.003 to 0.1)")
    return None


def model_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not a model the compressor can use, judged by its files alone, or None."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        return f"{folder}: no trained model there (give OUT/models/<size>, or run notebook 03)"
    if not (folder / "model.safetensors").is_file():
        return (f"{folder}: no model.safetensors there (its training did not finish, or the weights were "
                "not copied): give a complete OUT/models/<size>, or run notebook 03 for that size")
    if not (folder / "tokenizer.json").is_file():
        return (f"{folder}: no tokenizer.json there: copy in the tokenizer the model was trained with "
                "(OUT/tokenizer/tokenizer.json; notebook 03 saves it beside the weights)")
    return None


def model_hash(folder: Path) -> bytes:
    """SHA-256 of what decides the probabilities: the weights, the config and the tokenizer."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        path = Path(folder) / name
        digest.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return digest.digest()


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    problem = model_folder_problem(folder)
    if problem:
        raise CompressError(problem)
    model = AutoModelForCausalLM.from_pretrained(folder).float().eval()
    return model, AutoTokenizer.from_pretrained(folder)


def counts(logits: torch.Tensor) -> list[int]:
    """Cumulative integer frequencies (length vocabulary + 1) from one position's logits."""
    if not torch.isfinite(logits).all():  # NaN would be coded as garbage counts, found only at the end
        raise CompressError("the model's predictions are not a number (NaN or infinite): with --dynamic-lr, "
                            "choose a smaller rate; without it, the model is damaged (train it again)")
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
        # The decoder shifts exactly as often as the encoder did (which wrote one bit per shift, and
        # one more), and reads STATE_BITS ahead: reading further means the payload ended too soon.
        self.last_bit = 8 * len(data) + STATE_BITS
        self.low, self.high, self.code = 0, MASK, 0
        for _ in range(STATE_BITS):
            self.code = (self.code << 1) | self._bit()

    def _bit(self) -> int:
        byte, offset = divmod(self.position, 8)
        self.position += 1
        if self.position > self.last_bit:
            raise CompressedFileError("the file is damaged or cut short: its payload ends before its tokens do, "
                                      "so nothing was written")
        return (self.data[byte] >> (7 - offset)) & 1 if byte < len(self.data) else 0

    def decode(self, cum: list[int]) -> int:
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


def _progress_bar(n_tokens: int, label: str, shown: bool):
    """A tqdm bar on stderr with the time left. Where stderr is not a terminal (a log file), a line
    every 30 seconds instead of ten a second."""
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=n_tokens, desc=label, unit=" tokens", file=sys.stderr, disable=not shown,
                mininterval=0.1 if interactive else 30, dynamic_ncols=interactive)


def _code(model, start_id: int, n_tokens: int, lr: float, step, bar=None) -> list[int]:
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
        if bar is not None:
            bar.update(window.end - window.start)
    return ids


def _as_text(data: bytes, tokenizer) -> tuple[str, int]:
    """The text the tokenizer reads, and 0 (UTF-8) or 1 (any bytes, one character each, latin-1)."""
    for latin1, text in enumerate((_utf8(data), data.decode("latin-1"))):
        if text is not None and tokenizer.decode(tokenizer.encode(text, verbose=False)) == text:
            return text, latin1
    raise CompressError("the tokenizer cannot represent this input exactly; it cannot be compressed with it")


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _TokenBounds:
    """What a genuine file's token count and byte length can be, for this model and tokenizer.

    - Tokens per byte: a byte-level tokenizer gives every token at least one byte of the text's
      UTF-8 form, which is the file's bytes (UTF-8) or at most twice as many (latin-1: a byte
      from 0x80 up is two bytes in UTF-8), plus any tokens it adds to every text.
    - Bytes per token: at most the longest token's text (a lone byte decodes to U+FFFD, three).
    - Tokens per payload bit: every other token of the vocabulary has a count of at least 1 out of
      at most 2**16, so even the likeliest token costs -log2(1 - (V - 1) / 2**16) bits, less the
      integer rounding (the interval is at least 2**30 wide, so at most a factor 1 + 2**-14); and
      the encoder writes at least as many bits as the tokens cost, less 2. (A very likely token
      costs far under a bit, so this bound is loose: the byte length is what holds the count.)"""

    def __init__(self, model, tokenizer):
        self.added = len(tokenizer.encode("", verbose=False))
        self.max_token_bytes = max(len(tokenizer.decode([i]).encode("utf-8")) for i in range(len(tokenizer)))
        vocabulary = model.config.vocab_size
        self.min_bits_per_token = -math.log2(1 - (vocabulary - 1) / (1 << PRECISION)) - math.log2(1 + 2**-14)

    def max_tokens_for_bytes(self, n_bytes: int, latin1: int) -> int:
        return (2 if latin1 else 1) * n_bytes + self.added

    def max_tokens_for_payload(self, payload_bytes: int) -> float:
        if self.min_bits_per_token <= 0:
            return math.inf
        return (8 * payload_bytes + STATE_BITS) / self.min_bits_per_token

    def problem(self, header: Header, payload_bytes: int) -> str | None:
        n_tokens, n_bytes = header.n_tokens, header.n_bytes
        if n_tokens > self.max_tokens_for_payload(payload_bytes):
            return (f"the token count ({n_tokens:,}) is more than its {payload_bytes:,}-byte payload can hold "
                    f"(at most {int(self.max_tokens_for_payload(payload_bytes)):,})")
        if n_bytes > n_tokens * self.max_token_bytes:
            return (f"the byte length ({n_bytes:,}) is more than its token count ({n_tokens:,}) can spell "
                    f"(at most {self.max_token_bytes} bytes a token)")
        if n_tokens > self.max_tokens_for_bytes(n_bytes, header.latin1):
            return (f"the token count ({n_tokens:,}) is more than its byte length ({n_bytes:,}) allows "
                    f"(at most {self.max_tokens_for_bytes(n_bytes, header.latin1):,})")
        return None


def compress(data: bytes, folder: Path, lr: float = 0.0, progress: bool = False) -> bytes:
    """The compressed file of `data`; with `progress`, a bar on stderr."""
    problem = learning_rate_problem(lr)
    if problem:
        raise CompressError(f"learning rate {lr!r}: {problem}")
    model, tokenizer = load(folder)
    text, latin1 = _as_text(data, tokenizer)
    ids = tokenizer.encode(text, verbose=False)
    header = Header(MAGIC, int(lr > 0), latin1, model_hash(folder), len(data), len(ids), zlib.crc32(data),
                    float(lr), dynamic.CHUNK, dynamic.CONTEXT)
    if len(ids) > _TokenBounds(model, tokenizer).max_tokens_for_bytes(len(data), latin1):
        raise CompressError(f"this tokenizer gives {len(ids):,} tokens for {len(data):,} bytes, more than the "
                            "decompressor accepts: the compressor needs a byte-level tokenizer like notebook 02's")
    encoder = Encoder()

    def code(cum, position):
        encoder.encode(cum, ids[position])
        return ids[position]

    with _one_thread(), _progress_bar(len(ids), "compressing", progress) as bar:
        _code(model, tokenizer.eos_token_id, len(ids), lr, code, bar)
    return HEADER.pack(*header) + encoder.finish()


def read_header(blob: bytes) -> Header:
    """The header of a compressed file, every field checked that can be without the model."""
    if len(blob) < HEADER.size or not blob.startswith(MAGIC[:5]):
        raise CompressedFileError("not a file made by python -m junglegpt.compress (or it is cut short)")
    header = Header(*HEADER.unpack_from(blob))
    if header.magic != MAGIC:
        raise CompressedFileError(f"made by version {header.magic[5]} of the junglegpt.compress format; this one "
                                  f"reads version {FORMAT_VERSION}: decompress it with the junglegpt that made it")
    for name, ours in (("chunk", dynamic.CHUNK), ("context", dynamic.CONTEXT)):
        if getattr(header, name) != ours:
            raise CompressedFileError(f"its header gives a {name} of {getattr(header, name)} tokens, where this "
                                      f"version uses {ours}: made by another version of junglegpt.compress, or "
                                      "damaged")
    damaged = "its header is damaged (nothing was decoded or written): "
    if header.dynamic not in (0, 1):
        raise CompressedFileError(f"{damaged}the dynamic flag is {header.dynamic} (0 or 1 expected)")
    if header.latin1 not in (0, 1):
        raise CompressedFileError(f"{damaged}the text encoding flag is {header.latin1} "
                                  "(0: UTF-8 or 1: latin-1 expected)")
    if learning_rate_problem(header.lr):
        raise CompressedFileError(f"{damaged}the learning rate is {header.lr!r}, not a number from 0 to "
                                  f"{MAX_DYNAMIC_LR:g}")
    if header.dynamic != int(header.lr > 0):
        raise CompressedFileError(f"{damaged}the dynamic flag ({header.dynamic}) disagrees with the learning "
                                  f"rate ({header.lr!r})")
    return header


def decompress(blob: bytes, folder: Path, progress: bool = False) -> bytes:
    """The bytes that `blob` was compressed from; with `progress`, a bar on stderr."""
    header = read_header(blob)
    problem = model_folder_problem(folder)
    if problem:
        raise CompressError(problem)
    if header.model_sha256 != model_hash(folder):
        raise CompressedFileError(f"this file was compressed with another model (hash "
                                  f"{header.model_sha256.hex()[:12]}), not {folder} (hash "
                                  f"{model_hash(folder).hex()[:12]}): give that model with --model")
    model, tokenizer = load(folder)
    payload = blob[HEADER.size :]
    problem = _TokenBounds(model, tokenizer).problem(header, len(payload))
    if problem:
        raise CompressedFileError(f"its header is damaged (nothing was decoded or written): {problem}")
    decoder = Decoder(payload)
    with _one_thread(), _progress_bar(header.n_tokens, "decompressing", progress) as bar:
        ids = _code(model, tokenizer.eos_token_id, header.n_tokens, header.lr,
                    lambda cum, position: decoder.decode(cum), bar)
    text = tokenizer.decode(ids)
    data = text.encode("latin-1" if header.latin1 else "utf-8", errors="replace")
    if len(data) != header.n_bytes or zlib.crc32(data) != header.crc:
        raise CompressedFileError("the file is damaged or cut short: what it decodes to fails its checksum, so "
                                  "nothing was written")
    return data


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints its usage first): the line names the problem."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _learning_rate_argument(text: str) -> float:
    try:
        lr = float(text)
    except ValueError:
        lr = math.nan
    problem = learning_rate_problem(lr)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate it can use: {problem}")
    return lr


def input_problem(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a folder, not a file: give the file itself"
    if not path.is_file():
        return f"{path}: no such file"
    return None


def output_problem(source: Path, output: Path, force: bool, action: str = "compress") -> str | None:
    """Why the result cannot be written to `output`, checked before the work; None if it can."""
    if output.exists() and os.path.samefile(source, output):  # however it is spelled: a link, "a/../b"
        same = "" if output == source else f" ({source})"
        return f"{output} is the input file{same}: the input is never overwritten; give another output file"
    if output.is_dir():
        name = source.name + ".jgz" if action == "compress" else source.stem + ".txt"
        return f"{output} is a folder: give the output a file name, e.g. {output / name}"
    if (output.exists() or output.is_symlink()) and not force:
        return f"{output} already exists: add --force to replace it, or give another output file"
    folder = next(p for p in (output.parent, *output.parent.parents) if p.exists() or p == p.parent)
    if not folder.is_dir():
        return f"{output} cannot be written: {folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{output} cannot be written: no permission to write in {folder}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineParser(prog="python -m junglegpt.compress", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("compress", "decompress"))
    parser.add_argument("--model", required=True, type=Path, help="a trained model's folder, e.g. OUT/models/1M")
    parser.add_argument("--dynamic-lr", type=_learning_rate_argument, default=0.0,
                        help=f"compress: learn from each chunk after coding it, with SGD at this rate, from 0 "
                             f"(static, the default) to {MAX_DYNAMIC_LR:g}")
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    for check in (lambda: model_folder_problem(args.model), lambda: input_problem(args.input),
                  lambda: output_problem(args.input, args.output, args.force, args.action)):
        problem = check()  # in turn: the output is compared with an input that exists
        if problem:
            parser.error(problem)
    from transformers.utils import logging as hf_logging

    from .runs import model_problem

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    problem = model_problem(args.model)
    if problem:
        parser.error(f"{problem}: train it again (notebook 03 for that size, or ./run_all.sh --sizes <size>)")
    started = time.perf_counter()
    try:
        data = args.input.read_bytes()
        result = (compress(data, args.model, args.dynamic_lr, progress=not args.quiet) if args.action == "compress"
                  else decompress(data, args.model, progress=not args.quiet))
        atomic_write_bytes(args.output, result)
    except CompressError as err:
        print(f"error: {args.input}: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # an input that cannot be read, a full disk (io.DiskFullError says what to do), ...
        print(f"error: {err.filename or args.output}: {err.strerror or err}; nothing was written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing was written to {args.output}", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    original = len(result) if args.action == "decompress" else len(data)
    packed = len(data) if args.action == "decompress" else len(result)
    print(f"{args.action}ed {args.input} -> {args.output}: {original:,} bytes <-> {packed:,} bytes "
          f"({8 * packed / max(original, 1):.3f} bits per byte) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
