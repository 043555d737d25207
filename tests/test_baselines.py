"""Each baseline on small texts whose answer is known."""

from __future__ import annotations

import math
import random

import pytest

from junglegpt.baselines import PPMD_ORDERS, KneserNey, byte_unigram_bpb, compressor_bpb, ppmd_bpb, ppmd_order_study


def test_byte_unigram_on_four_equally_common_letters_is_two_bits():
    assert byte_unigram_bpb(b"abcd" * 10_000, b"dcba" * 100) == pytest.approx(2.0, abs=0.02)


def test_byte_unigram_never_gives_zero_probability():
    assert math.isfinite(byte_unigram_bpb(b"aaaa", b"z"))


@pytest.mark.parametrize("name", ["gzip", "bz2", "lzma"])
def test_compressors_spend_little_on_repeated_text_and_eight_bits_on_noise(name):
    rng = random.Random(0)
    train = bytes(rng.randrange(256) for _ in range(20_000))
    repeated = train[-5_000:]
    noise = bytes(rng.randrange(256) for _ in range(5_000))
    # LZ77 (gzip, lzma) copies the repeat for almost nothing; bz2's block sorting gains less on random bytes.
    assert compressor_bpb(name, train, repeated) < (0.5 if name != "bz2" else 4.5)
    assert compressor_bpb(name, train, noise) > 7.8


def test_kneser_ney_probabilities_sum_to_one():
    rng = random.Random(1)
    tokens = [rng.choice([1, 2, 2, 3, 3, 3, 4]) for _ in range(500)]
    model = KneserNey(tokens, order=3, vocab_size=6)
    for history in ([1, 2], [3, 3], [5, 5], [], [4]):  # seen, seen, unseen, empty, short
        assert sum(model.prob(history, t) for t in range(6)) == pytest.approx(1.0)


def test_kneser_ney_by_hand_on_a_tiny_corpus():
    """Bigram KN on 'a b a c' (ids 1 2 1 3), history after BOS=0, discount 0.5, vocabulary of 4.

    Continuation counts for the unigram level: 1 follows {0, 2}; 2 follows {1}; 3 follows {1}: total 4.
    P1(2) = (1 - .5)/4 + .5 * 3/4 * 1/4 = 0.21875. The history 'a' (1) was followed by 2 and 3 once each:
    P(2 | 1) = (1 - .5)/2 + .5 * 2/2 * P1(2) = 0.359375.
    """
    model = KneserNey([1, 2, 1, 3], order=2, vocab_size=4, discount=0.5)
    assert model.prob([1], 2) == pytest.approx(0.359375)


def test_kneser_ney_learns_a_periodic_sequence():
    tokens = [1, 2, 3, 4] * 500
    model = KneserNey(tokens, order=3, vocab_size=10)
    assert model.total_nats([1, 2, 3, 4] * 10) / 40 < 0.05


def _words(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    vocabulary = "the wolf cub and bagheera said to mowgli in jungle law of baloo kaa hunting night".split()
    return " ".join(rng.choice(vocabulary) for _ in range(n)).encode()


def test_ppmd_spends_little_on_a_pattern_it_has_read_and_eight_bits_on_noise():
    train = b"Now this is the Law of the Jungle. " * 1_000
    rng = random.Random(1)
    noise = bytes(rng.randrange(256) for _ in range(5_000))
    assert ppmd_bpb(train, train[:5_000], order=6) < 0.05
    assert ppmd_bpb(train, noise, order=6) > 7.5


def test_ppmd_order_is_chosen_on_the_training_text_never_on_validation():
    train = _words(0, 20_000)
    order, rows = ppmd_order_study(train, _words(2, 2_000))
    assert order == min(rows, key=lambda row: row["held_back_bpb"])["order"]
    assert [row["order"] for row in rows] == list(PPMD_ORDERS)
    # Another validation text changes every val_bpb, and not the choice.
    rng = random.Random(3)
    other_order, other_rows = ppmd_order_study(train, bytes(rng.randrange(256) for _ in range(2_000)))
    assert other_order == order
    assert [r["val_bpb"] for r in other_rows] != [r["val_bpb"] for r in rows]
