"""Each baseline on small texts whose answer is known."""

from __future__ import annotations

import math
import random

import pytest

from junglegpt.baselines import KneserNey, byte_unigram_bpb, compressor_bpb


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
