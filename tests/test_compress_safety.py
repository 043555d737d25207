"""The compressor refuses what would never end (issue 33): a damaged header field is named before
any decoding. These use a tiny random GPT-2 (a second to build), not the smoke run."""

from __future__ import annotations

import math
import random

import pytest
import torch

from junglegpt import compress
from junglegpt.compress import CompressedFileError, CompressError

END_OF_TEXT = "<|endoftext|>"
TEXT = ("Now Rann the Kite brings home the night that Mang the Bat sets free. The herds are shut in byre "
        "and hut, for loosed till dawn are we. This is the hour of pride and power, talon and tush and "
        "claw. Oh, hear the call! Good hunting all that keep the Jungle Law! ") * 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A one-layer GPT-2 with random weights and a byte-level BPE tokenizer like notebook 02's (its
    probabilities are poor, which is all a test of the coder's safety needs)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([TEXT], trainers.BpeTrainer(
        vocab_size=320, special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT,
                                        pad_token=END_OF_TEXT, model_max_length=256,
                                        clean_up_tokenization_spaces=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=len(tokenizer), n_positions=256,
                                       bos_token_id=0, eos_token_id=0))
    folder = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def packed_text(tiny_model):
    return compress.compress(TEXT.encode(), tiny_model)


# Damaged headers ----------------------------------------------------------------------------------


def _damaged(blob: bytes, **fields) -> bytes:
    header = compress.Header(*compress.HEADER.unpack_from(blob))._replace(**fields)
    return compress.HEADER.pack(*header) + blob[compress.HEADER.size :]


@pytest.mark.parametrize("fields, expected", [
    ({"magic": b"JGPTZ\x09"}, "version 9"),
    ({"magic": b"PK\x03\x04\x00\x00"}, "not a file made by"),
    ({"dynamic": 2}, "dynamic flag"),
    ({"dynamic": 1}, "dynamic flag"),  # a static file (lr 0) that says it learned
    ({"latin1": 7}, "text encoding flag"),
    ({"model_sha256": bytes(32)}, "compressed with another model"),
    ({"n_bytes": 2**40}, "byte length"),
    ({"n_tokens": 2**40}, "token count"),
    ({"n_tokens": 2**40, "n_bytes": 2**40}, "token count"),
    ({"n_tokens": 0}, "token count"),
    ({"n_bytes": 3}, "token count"),
    ({"lr": math.nan}, "learning rate"),
    ({"lr": math.inf}, "learning rate"),
    ({"lr": -0.5}, "learning rate"),
    ({"lr": 1e6}, "learning rate"),
    ({"chunk": 64}, "chunk"),
    ({"context": 5}, "context"),
])
def test_a_damaged_header_field_is_named_before_any_decoding(tiny_model, packed_text, monkeypatch, fields, expected):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoding started: the header was not checked first")

    monkeypatch.setattr(compress, "_code", no_decoding)
    with pytest.raises(CompressedFileError, match=expected):
        compress.decompress(_damaged(packed_text, **fields), tiny_model)


def test_a_damaged_checksum_is_refused_after_decoding(tiny_model, packed_text):
    crc = compress.Header(*compress.HEADER.unpack_from(packed_text)).crc
    with pytest.raises(CompressedFileError, match="checksum"):
        compress.decompress(_damaged(packed_text, crc=crc ^ 1), tiny_model)


def test_a_payload_that_ends_too_soon_is_refused_as_soon_as_it_runs_out(tiny_model, monkeypatch):
    blob = compress.compress(TEXT.encode() * 4, tiny_model)
    cut = blob[: compress.HEADER.size + 40]
    tokens_decoded = []
    real_counts = compress.counts
    monkeypatch.setattr(compress, "counts", lambda logits: tokens_decoded.append(1) or real_counts(logits))
    with pytest.raises(CompressedFileError, match="cut short"):
        compress.decompress(cut, tiny_model)
    n_tokens = compress.Header(*compress.HEADER.unpack_from(blob)).n_tokens
    assert len(tokens_decoded) < n_tokens / 2


@pytest.mark.parametrize("data", [
    pytest.param(TEXT.encode(), id="text"),
    # latin-1: up to two tokens a byte
    pytest.param(bytes(random.Random(3).randrange(128, 256) for _ in range(150)), id="high bytes"),
    pytest.param((END_OF_TEXT * 40).encode(), id="end-of-text markers"),
    pytest.param(b"", id="empty"),
])
@pytest.mark.parametrize("lr", [0.0, 0.05])
def test_genuine_files_pass_the_header_checks(tiny_model, data, lr):
    assert compress.decompress(compress.compress(data, tiny_model, lr=lr), tiny_model) == data


@pytest.mark.parametrize("lr", [math.nan, math.inf, -1.0, 1e6])
def test_the_python_function_refuses_the_same_rates(tiny_model, lr):
    with pytest.raises(CompressError, match="learning rate"):
        compress.compress(b"Kaa", tiny_model, lr=lr)
