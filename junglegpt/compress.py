"""Bits per byte is a file size: an arithmetic coder driven by the network mixed with count models.

    python -m junglegpt.compress compress   --model OUT/models/1M book.txt book.jgz
    python -m junglegpt.compress decompress --model OUT/models/1M book.jgz book.txt

The text is tokenized, and for each token the predictor gives a probability to every token of
the vocabulary; the arithmetic coder spends -log2(p) bits on the one that comes. So the file is
as long as the predictor's score of the text says, plus a header. The predictor is notebook 04's
mixture: the network, learning while it reads, mixed with count models that learn as they read,
primed on the training text (`junglegpt.mixture`), and then mixed again with the product of its
parts (`mixture.Product`), which needs the whole distributions only the compressor has. To be
fast it reads the text as `--streams` stretches side by side, and the network learns in its
output layer only (`junglegpt.streams`); the decompressor, having decoded a step, learns exactly
as the compressor did: both sides adapt in lockstep.

Everything it needs is found from the model's folder: the tokenizer beside the weights, the
training text (`train.txt` beside the model, or the run's `data/train.txt`), and the settings
notebook 04 chose for the held-out book (the run's `results.json`; defaults where 04 has not run).
`--network-only` codes with the network alone, `--dynamic-lr 0` keeps it frozen.

Both sides must compute bit-identical probabilities, so both run on the CPU, in fp32 (the counts
and the mixers in float64), with THREADS torch threads (the network's step runs in a process of
its own, in one thread: `streams.Predictor.run`). The header holds the hashes of the model and of the
priming text, every setting, the text's length and a CRC-32: a file made with another model or
another priming text is refused, and a damaged or cut file is refused, never decoded into
garbage. Every header field is checked before decoding (a damaged token count would otherwise
decode for days before the CRC could say so). Decompressing needs the same model and the same
torch build (a different BLAS may round differently).

The command never overwrites its input, nor an existing file unless --force, and checks the
output path before the work; it shows its progress on stderr (--quiet: none). The functions
`compress` and `decompress` print nothing unless asked (progress=True).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from . import dynamic, mixture, streams
from .io import atomic_write_bytes

FORMAT_VERSION = 3  # 3: the mixture has a second stage, the product (junglegpt.streams)
MAGIC = b"JGPTZ" + bytes([FORMAT_VERSION])
HEADER = struct.Struct("<6sBBB32s32sQQIdHHHBddd")  # the fields of Header, in order


class Header(NamedTuple):
    magic: bytes
    dynamic: int  # 1 if the network learned while coding (lr > 0)
    latin1: int  # 0: the bytes were read as UTF-8; 1: as latin-1 (any bytes, one character each)
    mixed: int  # 1: the network mixed with count models; 0: the network alone
    model_sha256: bytes  # model_hash of the model folder
    prime_sha256: bytes  # SHA-256 of the text the counts were primed on (zeros if not mixed)
    n_bytes: int
    n_tokens: int
    crc: int  # CRC-32 of the original bytes
    lr: float
    chunk: int
    context: int
    streams: int  # stretches of the text read side by side (junglegpt.streams)
    max_order: int  # the count models' settings (junglegpt.mixture.Settings)
    discount: float
    mixer_lr: float
    share: float

    def settings(self) -> mixture.Settings | None:
        if not self.mixed:
            return None
        return mixture.Settings(max_order=self.max_order, discount=self.discount, mixer_lr=self.mixer_lr,
                                share=self.share)


PRECISION = 24  # probabilities are rounded to counts out of about 2**24, each at least 1
TOP_SHARE = 127  # the likeliest token's count is at most 127 times all the others'
MAX_TOKEN_P = TOP_SHARE / (TOP_SHARE + 1)  # 1 - 2**-7: its probability, at most
STATE_BITS = 32
FULL, HALF, QUARTER = 1 << STATE_BITS, 1 << (STATE_BITS - 1), 1 << (STATE_BITS - 2)
MASK = FULL - 1
# Learning while coding: SGD steps, the gradient clipped to norm 1 (dynamic.GRAD_CLIP); 1 coded the
# validation text 3% larger than 0.1 (see DEFAULT_LR), so larger rates are refused.
MAX_DYNAMIC_LR = 1.0
# The output layer's SGD rate while coding (junglegpt.streams), chosen as notebook 04 chooses, on
# text that is not reported: the validation text with the full-profile 1M (0, 0.03, 0.1, 0.3, 1:
# 0.1 coded it smallest; docs/results.md).
DEFAULT_LR = 0.1
MAX_STREAMS = 4096


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
    from .runs import _quiet_transformers

    with _quiet_transformers():  # no loading bar: the model was checked, and any error still raises
        model = AutoModelForCausalLM.from_pretrained(folder).float().eval()
        return model, AutoTokenizer.from_pretrained(folder)


def cumulative(probs: np.ndarray) -> np.ndarray:
    """(rows, vocabulary + 1) cumulative integer frequencies out of about 2**PRECISION, every token
    at least 1, from (rows, vocabulary) probabilities."""
    if not np.isfinite(probs).all():  # NaN would be coded as garbage counts, found only at the end
        raise CompressError("the model's predictions are not a number (NaN or infinite): with --dynamic-lr, "
                            "choose a smaller rate; without it, the model is damaged (train it again)")
    freq = np.floor(probs * ((1 << PRECISION) - probs.shape[-1])).astype(np.int64) + 1
    # no token above MAX_TOKEN_P: every token then costs a little, which bounds how many tokens
    # a payload can hold (_TokenBounds), and so how long a damaged header can make decoding run
    rows, top = np.arange(len(freq)), freq.argmax(1)
    rest = freq.sum(1) - freq[rows, top]
    freq[rows, top] = np.minimum(freq[rows, top], rest * TOP_SHARE)
    cum = np.zeros((probs.shape[0], probs.shape[1] + 1), dtype=np.int64)
    np.cumsum(freq, axis=1, out=cum[:, 1:])
    return cum


class Encoder:
    def __init__(self):
        self.low, self.high, self.pending, self.bits = 0, MASK, 0, []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        self.bits.extend([bit ^ 1] * self.pending)
        self.pending = 0

    def encode(self, cum, symbol: int) -> None:
        total, span = int(cum[-1]), self.high - self.low + 1
        self.high = self.low + int(cum[symbol + 1]) * span // total - 1
        self.low = self.low + int(cum[symbol]) * span // total
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

    def decode(self, cum) -> int:
        total, span = int(cum[-1]), self.high - self.low + 1
        value = ((self.code - self.low + 1) * total - 1) // span
        symbol = int(np.searchsorted(cum, value, side="right")) - 1
        self.high = self.low + int(cum[symbol + 1]) * span // total - 1
        self.low = self.low + int(cum[symbol]) * span // total
        while ((self.low ^ self.high) & HALF) == 0:
            self.code = ((self.code << 1) & MASK) | self._bit()
            self.low, self.high = (self.low << 1) & MASK, ((self.high << 1) & MASK) | 1
        while self.low & ~self.high & QUARTER:
            self.code = (self.code & HALF) | ((self.code << 1) & (MASK >> 1)) | self._bit()
            self.low = (self.low << 1) ^ HALF
            self.high = ((self.high ^ HALF) << 1) | HALF | 1
        return symbol


# Both sides compute with this many torch threads, whatever the machine has: a different thread
# count can round matrix sums differently. One: the steps are too small for torch's own second
# thread to pay (two made coding the held-out book 40% slower on a 2-core Xeon); the second core
# runs the network's step beside the counts' instead, in a process that computes in one thread
# whatever this says (junglegpt.streams._serve): keep it at 1.
THREADS = 1


@contextlib.contextmanager
def _fixed_threads():
    """THREADS threads while coding. (Also quiet: transformers warns about a cache argument that
    the platforms' older versions need.)"""
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
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


def _code(model, start_id: int, header: Header, prime_ids: list[int], step, bar=None) -> list[int]:
    """The loop both sides share (junglegpt.streams.Predictor): `step(cum, stream)` codes (or decodes)
    a stream's next token from its cumulative frequencies and returns it."""
    layout = streams.Layout(header.n_tokens, header.streams, -(-header.n_tokens // header.streams))
    predictor = streams.Predictor(model, start_id, layout, header.lr, header.settings(), prime_ids)

    def code(probs, active):
        cum = cumulative(probs)
        tokens = [step(row, s) for row, s in zip(cum, active, strict=True)]
        if bar is not None:
            bar.update(len(tokens))
        return tokens

    return predictor.run(code)


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
    - Tokens per payload bit: no token gets more than MAX_TOKEN_P of the interval (`cumulative`), and
      integer rounding widens a symbol's interval by less than one unit of one at least 2**30 wide,
      so every token costs at least -log2(MAX_TOKEN_P + 2**-30) bits; the encoder writes at least
      as many bits as the tokens cost, less 2. (A loose bound, about 700 tokens a payload byte;
      the byte length is what holds the count, and this catches a header whose token count and
      byte length were both damaged.)"""

    def __init__(self, model, tokenizer):
        self.added = len(tokenizer.encode("", verbose=False))
        self.max_token_bytes = max(len(tokenizer.decode([i]).encode("utf-8")) for i in range(len(tokenizer)))
        self.min_bits_per_token = -math.log2(MAX_TOKEN_P + 2**-30)

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


def run_folder(folder: Path) -> Path | None:
    """OUT for a model saved in OUT/models/... (a size, or e.g. models/finetuned/gpt2), else None."""
    return next((p.parent for p in Path(folder).resolve().parents if p.name == "models"), None)


def prime_path(folder: Path) -> Path | None:
    """The training text the counts are primed on: `train.txt` beside the model, or the run's
    `data/train.txt`; None if neither is there."""
    run = run_folder(folder)
    for path in (Path(folder) / "train.txt", *([run / "data" / "train.txt"] if run else [])):
        if path.is_file():
            return path
    return None


def chosen_settings(folder: Path) -> mixture.Settings:
    """The mixture's settings notebook 04 chose for the held-out book (on the validation text, which
    is never reported), from the run's results.json; mixture.Settings() where 04 has not run."""
    try:
        results = json.loads((run_folder(folder) / "results.json").read_text(encoding="utf-8"))
        row = next(r for r in results["mixture"] if (r["text"], r["network"]) == ("heldout", "dynamic"))
        return mixture.Settings(**row["parts"]["settings"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return mixture.Settings()


def _prime(folder: Path, prime: Path | None, tokenizer) -> tuple[list[int], bytes]:
    """The priming text's token ids and its SHA-256."""
    path = prime or prime_path(folder)
    if path is None:
        raise CompressError(f"no training text to prime the count models on: neither {Path(folder) / 'train.txt'} "
                            f"nor the run's data/train.txt exists; give one with --prime, or code with the "
                            "network alone (--network-only)")
    data = Path(path).read_bytes()
    return tokenizer.encode(data.decode("utf-8", errors="replace"), verbose=False), hashlib.sha256(data).digest()


def compress(data: bytes, folder: Path, lr: float | None = None, progress: bool = False, mixed: bool = True,
             settings: mixture.Settings | None = None, prime: Path | None = None,
             n_streams: int = streams.STREAMS) -> bytes:
    """The compressed file of `data`; with `progress`, a bar on stderr. `lr` defaults to DEFAULT_LR,
    `settings` to what notebook 04 chose (`chosen_settings`); `mixed=False`: the network alone."""
    lr = DEFAULT_LR if lr is None else lr
    settings = (settings or chosen_settings(folder)) if mixed else None
    problem = learning_rate_problem(lr)
    if problem:
        raise CompressError(f"learning rate {lr!r}: {problem}")
    if not (isinstance(n_streams, int) and 1 <= n_streams <= MAX_STREAMS):
        raise CompressError(f"streams {n_streams!r}: choose a whole number from 1 to {MAX_STREAMS}")
    model, tokenizer = load(folder)
    prime_ids, prime_sha = _prime(folder, prime, tokenizer) if mixed else ([], bytes(32))
    text, latin1 = _as_text(data, tokenizer)
    ids = tokenizer.encode(text, verbose=False)
    layout = streams.Layout.for_text(len(ids), n_streams)
    s = settings or mixture.Settings()
    header = Header(MAGIC, int(lr > 0), latin1, int(mixed), model_hash(folder), prime_sha, len(data), len(ids),
                    zlib.crc32(data), float(lr), dynamic.CHUNK, dynamic.CONTEXT, layout.streams, s.max_order,
                    s.discount, s.mixer_lr, s.share)
    if len(ids) > _TokenBounds(model, tokenizer).max_tokens_for_bytes(len(data), latin1):
        raise CompressError(f"this tokenizer gives {len(ids):,} tokens for {len(data):,} bytes, more than the "
                            "decompressor accepts: the compressor needs a byte-level tokenizer like notebook 02's")
    encoder = Encoder()
    by_stream = layout.stream_ids(ids)
    done = [0] * layout.streams

    def code(cum, stream):
        token = by_stream[stream][done[stream]]
        done[stream] += 1
        encoder.encode(cum, token)
        return token

    with _fixed_threads(), _progress_bar(len(ids), "compressing", progress) as bar:
        _code(model, tokenizer.eos_token_id, header, prime_ids, code, bar)
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
    for name in ("dynamic", "mixed"):
        if getattr(header, name) not in (0, 1):
            raise CompressedFileError(f"{damaged}the {name} flag is {getattr(header, name)} (0 or 1 expected)")
    if header.latin1 not in (0, 1):
        raise CompressedFileError(f"{damaged}the text encoding flag is {header.latin1} "
                                  "(0: UTF-8 or 1: latin-1 expected)")
    if learning_rate_problem(header.lr):
        raise CompressedFileError(f"{damaged}the learning rate is {header.lr!r}, not a number from 0 to "
                                  f"{MAX_DYNAMIC_LR:g}")
    if header.dynamic != int(header.lr > 0):
        raise CompressedFileError(f"{damaged}the dynamic flag ({header.dynamic}) disagrees with the learning "
                                  f"rate ({header.lr!r})")
    if not 1 <= header.streams <= min(MAX_STREAMS, max(1, header.n_tokens)) or \
            header.n_tokens and -(-header.n_tokens // -(-header.n_tokens // header.streams)) != header.streams:
        raise CompressedFileError(f"{damaged}{header.streams:,} streams cannot hold {header.n_tokens:,} tokens "
                                  "the way the compressor cuts them")
    try:
        mixture.Settings(max_order=header.max_order, discount=header.discount, mixer_lr=header.mixer_lr,
                         share=header.share)
    except ValueError as err:
        raise CompressedFileError(f"{damaged}{err}") from None
    return header


def decompress(blob: bytes, folder: Path, progress: bool = False, prime: Path | None = None) -> bytes:
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
    prime_ids = []
    if header.mixed:
        prime_ids, prime_sha = _prime(folder, prime, tokenizer)
        if prime_sha != header.prime_sha256:
            raise CompressedFileError(f"this file's count models were primed on another text (hash "
                                      f"{header.prime_sha256.hex()[:12]}) than {prime or prime_path(folder)} (hash "
                                      f"{prime_sha.hex()[:12]}): give the training text it was made with (--prime)")
    payload = blob[HEADER.size :]
    problem = _TokenBounds(model, tokenizer).problem(header, len(payload))
    if problem:
        raise CompressedFileError(f"its header is damaged (nothing was decoded or written): {problem}")
    decoder = Decoder(payload)
    with _fixed_threads(), _progress_bar(header.n_tokens, "decompressing", progress) as bar:
        ids = _code(model, tokenizer.eos_token_id, header, prime_ids, lambda cum, stream: decoder.decode(cum), bar)
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
    parser.add_argument("--dynamic-lr", type=_learning_rate_argument, default=None,
                        help=f"compress: the SGD rate of the network's output layer, learning from each token after "
                             f"coding it, from 0 (frozen) to {MAX_DYNAMIC_LR:g} (default {DEFAULT_LR:g})")
    parser.add_argument("--network-only", action="store_true",
                        help="compress: the network alone, without the count models")
    parser.add_argument("--prime", type=Path, default=None,
                        help="the training text the count models read first (default: train.txt beside the model, "
                             "or the run's data/train.txt)")
    parser.add_argument("--streams", type=int, default=streams.STREAMS,
                        help=f"compress: stretches of the text read side by side (default {streams.STREAMS}; "
                             "fewer is slower and a little smaller)")
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.streams <= MAX_STREAMS:
        parser.error(f"--streams {args.streams}: choose a whole number from 1 to {MAX_STREAMS}")
    if args.prime is not None and input_problem(args.prime):
        parser.error(f"--prime: {input_problem(args.prime)}")
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
        result = (compress(data, args.model, args.dynamic_lr, progress=not args.quiet, mixed=not args.network_only,
                           prime=args.prime, n_streams=args.streams) if args.action == "compress"
                  else decompress(data, args.model, progress=not args.quiet, prime=args.prime))
        atomic_write_bytes(args.output, result)
    except CompressError as err:
        print(f"error: {args.input}: {err}", file=sys.stderr)
        return 1
    except streams.NetworkProcessError as err:
        print(f"error: {err}", file=sys.stderr)
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
