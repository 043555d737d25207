"""The eight sizes: real parameter counts match the table, and the table matches the names."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from junglegpt.sizes import (
    DEFAULT_VOCAB_SIZE,
    N_POSITIONS,
    SIZES,
    UnknownSizeError,
    count_parameters_by_part,
    get_size,
    parse_sizes,
    size_table_markdown,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", list(SIZES))
def test_parameter_count_is_real_and_within_ten_percent_of_the_name(name):
    size = SIZES[name]
    config = GPT2Config(vocab_size=DEFAULT_VOCAB_SIZE, n_positions=N_POSITIONS, n_embd=size.n_embd,
                        n_layer=size.n_layer, n_head=size.n_head)
    with __import__("torch").device("meta"):  # shapes only: no memory, no time
        model = GPT2LMHeadModel(config)
    real = sum(p.numel() for p in model.parameters())
    assert real == size.n_params()
    assert count_parameters_by_part(model) == size.parameters_by_part()  # part by part, too
    assert abs(real / size.target_params - 1) < 0.10, f"{name}: {real:,} vs {size.target_params:,.0f}"
    assert size.n_embd % size.n_head == 0


def test_sizes_grow():
    counts = [s.n_params() for s in SIZES.values()]
    assert counts == sorted(counts)


def test_unknown_size_lists_the_valid_ones():
    with pytest.raises(UnknownSizeError, match="1M, 3M, 7M, 15M, 22M, 37M, 59M, 100M"):
        get_size("5M")
    assert get_size("15m").name == "15M"
    assert parse_sizes("all") == list(SIZES)
    assert parse_sizes("100M,1M") == ["1M", "100M"]
    with pytest.raises(UnknownSizeError):
        parse_sizes("1M,huge")


def test_the_readme_size_table_is_the_one_sizes_py_makes():
    assert size_table_markdown() in (ROOT / "README.md").read_text(encoding="utf-8")
