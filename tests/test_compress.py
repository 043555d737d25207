"""Dynamic evaluation's no-peeking rule, and the model-driven compressor: round trips, refusals, and
file sizes that agree with bits per byte."""

from __future__ import annotations

import os
import random
import shutil

import pytest
import torch

from junglegpt import compress, dynamic, mixture
from junglegpt.compress import CompressedFileError


@pytest.fixture(scope="module")
def model_dir(smoke_1m):
    return smoke_1m.model("1M")


@pytest.fixture(scope="module")
def model_and_tokenizer(model_dir):
    return compress.load(model_dir)


@pytest.fixture(scope="module")
def val_text(smoke_1m):
    return smoke_1m.val_txt.read_text(encoding="utf-8")[:2000]


def _ids(tokenizer, text):
    return torch.tensor(tokenizer.encode(text, verbose=False))


def test_dynamic_evaluation_scores_each_chunk_before_learning_from_it(model_and_tokenizer, val_text):
    model, tokenizer = model_and_tokenizer
    ids = _ids(tokenizer, val_text)[: 2 * dynamic.CHUNK]
    first = ids[: dynamic.CHUNK]
    frozen_first = dynamic.dynamic_text_loss(model, first, 1, tokenizer.eos_token_id, lr=0.0).nats
    adapting = dynamic.dynamic_text_loss(model, first, 1, tokenizer.eos_token_id, lr=0.5).nats
    # The first chunk is scored by the untouched model: learning from it first would lower this number.
    assert adapting == pytest.approx(frozen_first, rel=1e-6)
    learned_first = _peeking_score(model, first, tokenizer.eos_token_id, lr=0.5)
    assert learned_first < frozen_first - 1.0, "learning before scoring would have changed the number"


def _peeking_score(model, ids, start_id, lr):
    """What a wrong implementation would report: learn from the chunk, then score it."""
    learner, optimizer = dynamic.learner_for(model, lr)
    window = dynamic.windows(len(ids))[0]
    x = dynamic.window_input(ids, window, start_id)
    dynamic.learn_step(learner, optimizer, dynamic.chunk_nll(learner, x, len(ids)))
    with torch.no_grad():
        return dynamic.chunk_nll(learner, x, len(ids)).sum().item()


def test_dynamic_evaluation_learns_a_repeated_text_and_leaves_the_model_alone(model_and_tokenizer, val_text):
    model, tokenizer = model_and_tokenizer
    before = {k: v.clone() for k, v in model.state_dict().items()}
    once = _ids(tokenizer, val_text)[: dynamic.CHUNK]
    twice = torch.cat([once, once, once])
    static = dynamic.dynamic_text_loss(model, twice, 1, tokenizer.eos_token_id, lr=0.0).nats
    adapted = dynamic.dynamic_text_loss(model, twice, 1, tokenizer.eos_token_id, lr=0.3).nats
    assert adapted < static  # a text seen a chunk ago is cheaper: what PPMd does
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())


def test_the_learning_rate_is_chosen_on_the_text_given_and_zero_is_a_choice(model_and_tokenizer, val_text):
    model, tokenizer = model_and_tokenizer
    ids = _ids(tokenizer, val_text)[:300]
    lr, scores = dynamic.choose_lr(model, ids, 1000, tokenizer.eos_token_id, grid=(0.01, 0.1))
    assert set(scores) == {0.0, 0.01, 0.1} and scores[lr] == min(scores.values())


@pytest.mark.parametrize("name, data", [
    ("validation text", None),
    ("random bytes", bytes(random.Random(7).randrange(256) for _ in range(300))),
    ("non-ASCII text", "Mowgli — «Shere Khan» — 狼の兄弟 🐺 naïve café\n".encode()),
    ("an empty file", b""),
])
@pytest.mark.parametrize("lr", [0.0, 0.05])
def test_round_trips_bit_exactly(model_dir, val_text, name, data, lr):
    data = val_text[:800].encode("utf-8") if data is None else data
    blob = compress.compress(data, model_dir, lr=lr)
    assert compress.decompress(blob, model_dir) == data


def test_file_size_agrees_with_the_mixture_notebook_04_reports(smoke_1m, model_dir, model_and_tokenizer, val_text):
    """Read in one stream with the network frozen, the file is as long as mixture.score says the
    text costs (what notebook 04's table reports), to 1%: the compressor codes what 04 measures."""
    model, tokenizer = model_and_tokenizer
    data = val_text.encode("utf-8")
    settings = compress.chosen_settings(model_dir)
    blob = compress.compress(data, model_dir, lr=0.0, n_streams=1)
    ids = tokenizer.encode(val_text, verbose=False)
    frozen = torch.cat(dynamic.token_nats(model, torch.tensor(ids), tokenizer.eos_token_id, lr=0.0)).numpy()
    prime = tokenizer.encode(smoke_1m.train_txt.read_text(encoding="utf-8"), verbose=False)
    score = mixture.score(prime, ids, frozen, settings, model.config.vocab_size, parts=("network", "counts"))
    coded = len(blob) - compress.HEADER.size
    assert 8 * coded / len(data) == pytest.approx(score.bits_per_byte(len(data)), rel=0.01)


def test_the_network_alone_agrees_with_bits_per_byte(model_dir, model_and_tokenizer, val_text):
    model, tokenizer = model_and_tokenizer
    data = val_text.encode("utf-8")
    blob = compress.compress(data, model_dir, lr=0.0, mixed=False, n_streams=1)
    score = dynamic.dynamic_text_loss(model, _ids(tokenizer, val_text), len(data), tokenizer.eos_token_id, lr=0.0)
    assert len(blob) - compress.HEADER.size == pytest.approx(score.bits_per_byte * len(data) / 8, rel=0.01)


def test_a_file_from_another_model_is_refused(smoke_run, model_dir, val_text):
    blob = compress.compress(val_text[:200].encode(), model_dir)
    with pytest.raises(CompressedFileError, match="compressed with another model"):
        compress.decompress(blob, smoke_run[0].model("3M"))


@pytest.mark.parametrize("damage", ["cut short", "a flipped byte", "not ours"])
def test_a_damaged_file_is_refused_and_nothing_is_written(model_dir, val_text, tmp_path, damage):
    original = tmp_path / "val.txt"
    original.write_bytes(val_text[:800].encode())
    packed, unpacked = tmp_path / "val.jgz", tmp_path / "back.txt"
    assert compress.main(["compress", "--model", str(model_dir), str(original), str(packed)]) == 0
    blob = packed.read_bytes()
    if damage == "cut short":
        blob = blob[: compress.HEADER.size + (len(blob) - compress.HEADER.size) // 2]
    elif damage == "a flipped byte":
        blob = blob[:-20] + bytes([blob[-20] ^ 0xFF]) + blob[-19:]
    else:
        blob = b"PK\x03\x04" + os.urandom(100)
    packed.write_bytes(blob)
    assert compress.main(["decompress", "--model", str(model_dir), str(packed), str(unpacked)]) == 1
    assert not unpacked.exists()


def test_a_damaged_token_count_is_refused_before_decoding(model_dir, val_text, monkeypatch):
    """With 2**40 tokens in its header, a file decoded with no output for as long as one waited."""
    blob = compress.compress(val_text[:400].encode(), model_dir)
    header = compress.Header(*compress.HEADER.unpack_from(blob))
    damaged = compress.HEADER.pack(*header._replace(n_tokens=2**40)) + blob[compress.HEADER.size :]
    monkeypatch.setattr(compress, "_code", lambda *args, **kwargs: pytest.fail("decoding started"))
    with pytest.raises(CompressedFileError, match="token count"):
        compress.decompress(damaged, model_dir)


def test_the_command_line_round_trips_a_file(model_dir, val_text, tmp_path, capsys):
    original = tmp_path / "val.txt"
    original.write_bytes(val_text[:600].encode())
    assert compress.main(["compress", "--model", str(model_dir), "--dynamic-lr", "0.03", str(original),
                          str(tmp_path / "val.jgz")]) == 0
    assert compress.main(["decompress", "--model", str(model_dir), str(tmp_path / "val.jgz"),
                          str(tmp_path / "back.txt")]) == 0
    assert (tmp_path / "back.txt").read_bytes() == original.read_bytes()
    assert "bits per byte" in capsys.readouterr().out


def test_a_missing_model_is_a_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "in.txt").write_text("Kaa")
    with pytest.raises(SystemExit):
        compress.main(["compress", "--model", str(tmp_path / "nothing"), str(tmp_path / "in.txt"), str(tmp_path / "o")])
    assert "no trained model there" in capsys.readouterr().err
    shutil.rmtree(tmp_path)
