"""The compressor's command line refuses what would lose data or never end (issue 33): its own input
or an existing file as the output, an output path it cannot write, a damaged header field, a learning
rate it cannot use, a model folder it cannot load. Each refusal is one line, before any work, and
nothing is written. These use a tiny random GPT-2 (a second to build), not the smoke run."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest

from junglegpt import compress
from junglegpt.compress import CompressedFileError, CompressError

from .helpers import END_OF_TEXT, save_tiny_gpt2

TEXT = ("Now Rann the Kite brings home the night that Mang the Bat sets free. The herds are shut in byre "
        "and hut, for loosed till dawn are we. This is the hour of pride and power, talon and tush and "
        "claw. Oh, hear the call! Good hunting all that keep the Jungle Law! ") * 3


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A one-layer GPT-2 with random weights (its probabilities are poor, which is all a test of the
    coder's safety needs)."""
    folder = tmp_path_factory.mktemp("tiny") / "model"
    save_tiny_gpt2(folder, TEXT, vocab_size=320, context=256)
    (folder / "train.txt").write_text(TEXT[::-1], encoding="utf-8")  # what the count models read first
    return folder


@pytest.fixture(scope="module")
def packed_text(tiny_model):
    return compress.compress(TEXT.encode(), tiny_model)


def _run(argv, capsys) -> tuple[int, str]:
    """main()'s exit status and its stderr, which must be one line without a traceback."""
    try:
        status = compress.main([str(a) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def _refused(argv, capsys, status: int = 2) -> str:
    got, err = _run(argv, capsys)
    assert got == status, err
    assert len(err.strip().splitlines()) == 1, err
    return err


# Outputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["compress", "decompress"])
@pytest.mark.parametrize("spelling", ["same path", "another spelling", "a link to it"])
@pytest.mark.parametrize("force", [False, True])
def test_the_output_may_not_be_the_input_however_spelled_even_with_force(tiny_model, packed_text, tmp_path, capsys,
                                                                         action, spelling, force):
    source = tmp_path / "book.txt"
    content = TEXT.encode() if action == "compress" else packed_text
    source.write_bytes(content)
    (tmp_path / "sub").mkdir()
    output = {"same path": source, "another spelling": tmp_path / "sub" / ".." / "book.txt",
              "a link to it": tmp_path / "link.txt"}[spelling]
    if spelling == "a link to it":
        output.symlink_to(source)
    err = _refused([action, "--model", tiny_model, source, output, *(["--force"] if force else [])], capsys)
    assert "is the input" in err
    assert source.read_bytes() == content
    expected = ["book.txt", "sub", *(["link.txt"] if spelling == "a link to it" else [])]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)


@pytest.mark.parametrize("action", ["compress", "decompress"])
def test_an_existing_output_is_kept_unless_force(tiny_model, packed_text, tmp_path, capsys, action):
    source = tmp_path / "in"
    source.write_bytes(TEXT.encode() if action == "compress" else packed_text)
    output = tmp_path / "out"
    output.write_bytes(b"precious")
    err = _refused([action, "--model", tiny_model, source, output], capsys)
    assert "already exists" in err and "--force" in err
    assert output.read_bytes() == b"precious"
    assert _run([action, "--model", tiny_model, "--force", source, output], capsys)[0] == 0
    assert output.read_bytes() == (packed_text if action == "compress" else TEXT.encode())


@pytest.mark.parametrize("where, expected", [
    ("a folder", "is a folder"),
    ("under a file", "is a file, not a folder"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tiny_model, tmp_path, capsys, monkeypatch,
                                                                     where, expected):
    source = tmp_path / "book.txt"
    source.write_bytes(TEXT.encode())
    (tmp_path / "folder").mkdir()
    output = tmp_path / "folder" if where == "a folder" else tmp_path / "book.txt" / "deeper" / "out.jgz"

    def no_work(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(compress, "compress", no_work)
    err = _refused(["compress", "--model", tiny_model, "--force", source, output], capsys)
    assert expected in err
    assert source.read_bytes() == TEXT.encode()


def test_a_missing_parent_folder_is_made(tiny_model, tmp_path, capsys):
    source = tmp_path / "book.txt"
    source.write_bytes(TEXT.encode())
    assert _run(["compress", "--model", tiny_model, source, tmp_path / "new" / "deeper" / "book.jgz"], capsys)[0] == 0
    assert compress.decompress((tmp_path / "new" / "deeper" / "book.jgz").read_bytes(), tiny_model) == TEXT.encode()


def test_a_failed_write_is_one_line_and_leaves_no_file(tiny_model, tmp_path, capsys, monkeypatch):
    from junglegpt.io import DiskFullError

    def disk_full(path, data):
        raise DiskFullError(28, f"The disk is full while writing {path}. Free some space and run again.")

    monkeypatch.setattr(compress, "atomic_write_bytes", disk_full)
    source = tmp_path / "book.txt"
    source.write_bytes(TEXT.encode())
    err = _refused(["compress", "--quiet", "--model", tiny_model, source, tmp_path / "book.jgz"], capsys, status=1)
    assert "The disk is full" in err and "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.txt"]


def test_an_input_that_is_a_folder_is_named(tiny_model, tmp_path, capsys):
    assert "is a folder" in _refused(["compress", "--model", tiny_model, tmp_path, tmp_path / "o"], capsys)


# The learning rate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "inf", "1e6", "nan", "fast", "-0.001"])
def test_an_unusable_learning_rate_is_one_line_naming_the_range(tiny_model, tmp_path, capsys, value):
    source = tmp_path / "book.txt"
    source.write_bytes(TEXT.encode())
    err = _refused(["compress", "--model", tiny_model, "--dynamic-lr", value, source, tmp_path / "o"], capsys)
    assert "--dynamic-lr" in err and f"{value!r}" in err and f"{compress.MAX_DYNAMIC_LR:g}" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("lr", [math.nan, math.inf, -1.0, 1e6])
def test_the_python_function_refuses_the_same_rates(tiny_model, lr):
    with pytest.raises(CompressError, match="learning rate"):
        compress.compress(b"Kaa", tiny_model, lr=lr)


def test_predictions_that_are_not_numbers_are_named_not_coded():
    with pytest.raises(CompressError, match="not a number"):
        compress.cumulative(np.array([[0.5, 0.5, 0.0], [0.0, math.nan, 1.0]]))


def test_every_token_keeps_a_count_and_the_counts_fit_the_coder():
    probs = np.array([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    cum = compress.cumulative(probs)
    assert (np.diff(cum, axis=1) >= 1).all() and (cum[:, -1] <= 1 << compress.PRECISION).all()
    shares = np.diff(cum, axis=1) / cum[:, -1:]
    assert shares.max() <= compress.MAX_TOKEN_P  # a sure token still costs a little (_TokenBounds)
    assert shares[1] == pytest.approx([0.25] * 4, abs=1e-6)


# The model folder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["compress", "decompress"])
@pytest.mark.parametrize("keep, expected", [
    (["config.json"], "no model.safetensors"),
    (["config.json", "model.safetensors"], "no tokenizer.json"),
    (["config.json", "tokenizer.json", "tokenizer_config.json"], "no model.safetensors"),
    ([], "no trained model there"),
])
def test_an_incomplete_model_folder_is_named(tiny_model, packed_text, tmp_path, capsys, action, keep, expected):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in keep:
        (folder / name).write_bytes((tiny_model / name).read_bytes())
    source = tmp_path / "in"
    source.write_bytes(TEXT.encode() if action == "compress" else packed_text)
    err = _refused([action, "--model", folder, source, tmp_path / "out"], capsys)
    assert expected in err and "compressed with another model" not in err
    assert not (tmp_path / "out").exists()


def test_a_damaged_model_file_is_named(tiny_model, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    for path in tiny_model.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes()[:500])
    source = tmp_path / "in"
    source.write_bytes(TEXT.encode())
    assert "cannot be loaded" in _refused(["compress", "--model", folder, source, tmp_path / "out"], capsys)


# Damaged headers ----------------------------------------------------------------------------------


def _damaged(blob: bytes, **fields) -> bytes:
    header = compress.Header(*compress.HEADER.unpack_from(blob))._replace(**fields)
    return compress.HEADER.pack(*header) + blob[compress.HEADER.size :]


@pytest.mark.parametrize("fields, expected", [
    ({"magic": b"JGPTZ\x09"}, "version 9"),
    ({"magic": b"PK\x03\x04\x00\x00"}, "not a file made by"),
    ({"dynamic": 2}, "dynamic flag"),
    ({"dynamic": 0}, "dynamic flag"),  # a file that learned (lr 0.1) and says it did not
    ({"latin1": 7}, "text encoding flag"),
    ({"model_sha256": bytes(32)}, "compressed with another model"),
    ({"n_bytes": 2**40}, "byte length"),
    ({"n_tokens": 2**40}, "token count"),
    ({"n_tokens": 2**40, "n_bytes": 2**40}, "token count"),
    ({"n_tokens": 0}, "token count|streams cannot hold 0 tokens"),
    ({"n_bytes": 3}, "token count"),
    ({"lr": math.nan}, "learning rate"),
    ({"lr": math.inf}, "learning rate"),
    ({"lr": -0.5}, "learning rate"),
    ({"lr": 1e6}, "learning rate"),
    ({"chunk": 64}, "chunk"),
    ({"context": 5}, "context"),
    ({"mixed": 3}, "mixed flag"),
    ({"streams": 0}, "streams"),
    ({"streams": 5000}, "streams"),
    ({"discount": 0.0}, "discount"),
    ({"max_order": 99}, "max_order"),
    ({"share": 1.0}, "share"),
    ({"mixer_lr": math.nan}, "mixer_lr"),
    ({"prime_sha256": bytes(32)}, "primed on another text"),
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
    real_cumulative = compress.cumulative
    monkeypatch.setattr(compress, "cumulative", lambda probs: tokens_decoded.extend(probs) or real_cumulative(probs))
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


# Progress -------------------------------------------------------------------------------------------


def test_the_command_shows_progress_on_stderr_and_the_functions_stay_quiet(tiny_model, tmp_path, capsys):
    source = tmp_path / "book.txt"
    source.write_bytes(TEXT.encode())
    compress.compress(TEXT.encode(), tiny_model)
    assert capsys.readouterr() == ("", "")
    assert compress.main(["compress", "--model", str(tiny_model), str(source), str(tmp_path / "b.jgz")]) == 0
    out, err = capsys.readouterr()
    assert "bits per byte" in out and "tokens" in err and "100%" in err
    assert compress.main(["decompress", "--quiet", "--model", str(tiny_model), str(tmp_path / "b.jgz"),
                          str(tmp_path / "back.txt")]) == 0
    assert capsys.readouterr().err == ""
    assert os.path.getsize(tmp_path / "back.txt") == len(TEXT.encode())


# The count models' priming text ------------------------------------------------------------------


def _model_without_training_text(tiny_model, tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for path in tiny_model.iterdir():
        if path.name != "train.txt":
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_no_training_text_is_one_line_saying_what_to_give(tiny_model, tmp_path, capsys):
    folder = _model_without_training_text(tiny_model, tmp_path)
    source = tmp_path / "in.txt"
    source.write_bytes(TEXT.encode())
    err = _refused(["compress", "--model", folder, source, tmp_path / "out"], capsys, status=1)
    assert "--prime" in err and "--network-only" in err
    assert not (tmp_path / "out").exists()
    assert _run(["compress", "--network-only", "--model", folder, source, tmp_path / "out"], capsys)[0] == 0
    assert _run(["compress", "--prime", tiny_model / "train.txt", "--model", folder, source, tmp_path / "o2"],
                capsys)[0] == 0
    assert _run(["decompress", "--prime", tiny_model / "train.txt", "--model", folder, tmp_path / "o2",
                 tmp_path / "back.txt"], capsys)[0] == 0
    assert (tmp_path / "back.txt").read_bytes() == TEXT.encode()


def test_a_file_primed_on_another_text_is_refused_before_decoding(tiny_model, packed_text, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text(TEXT, encoding="utf-8")
    with pytest.raises(CompressedFileError, match="primed on another text"):
        compress.decompress(packed_text, tiny_model, prime=other)


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("mixed", [True, False])
def test_round_trips_in_any_number_of_streams_with_or_without_counts(tiny_model, streams, mixed):
    data = (TEXT * 3).encode()
    blob = compress.compress(data, tiny_model, mixed=mixed, n_streams=streams)
    header = compress.read_header(blob)
    assert (header.streams, header.mixed) == (streams, int(mixed))
    assert compress.decompress(blob, tiny_model) == data


def test_the_settings_are_those_notebook_04_chose_for_the_held_out_book(tiny_model, tmp_path):
    run = tmp_path / "out"
    folder = run / "models" / "1M"
    folder.mkdir(parents=True)
    for path in tiny_model.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    assert compress.chosen_settings(folder) == compress.mixture.Settings()  # 04 has not run
    chosen = {"max_order": 3, "discount": 0.65, "min_match": 3, "mixer_lr": 0.1, "share": 0.002, "contexts": False}
    rows = [{"text": "val", "network": "dynamic", "parts": {"settings": {**chosen, "discount": 0.5}}},
            {"text": "heldout", "network": "dynamic", "parts": {"settings": chosen}}]
    (run / "results.json").write_text(json.dumps({"mixture": rows}), encoding="utf-8")
    assert compress.chosen_settings(folder) == compress.mixture.Settings(**chosen)
    header = compress.read_header(compress.compress(TEXT.encode(), folder))
    assert (header.max_order, header.discount) == (3, 0.65)
