"""Measures of generated text: variety, repetition, and how much of it is copied from the book."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """The series' one definition of a word: a run of letters, with inner apostrophes (don't, Mowgli's),
    lower-cased. Punctuation and numbers are not words."""
    return re.findall(r"[a-z]+(?:['’][a-z]+)*", text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(text: str, n: int) -> float:
    """Distinct n-grams over all n-grams of the text's words (1.0: nothing repeats)."""
    grams = ngrams(words(text), n)
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition_rate(text: str, n: int = 3) -> float:
    """The share of word n-grams that already occurred earlier in the same text ("the the the": high)."""
    grams = ngrams(words(text), n)
    seen, repeats = set(), 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams) if grams else 0.0


def longest_copied_span(text: str, source: str) -> str:
    """The longest substring of `text` that occurs verbatim in `source`."""
    best = ""
    for start in range(len(text)):
        # Grow the span while it still occurs in the source; a longer span must beat the best.
        length = len(best) + 1
        while start + length <= len(text) and text[start : start + length] in source:
            best = text[start : start + length]
            length += 1
    return best


def ngram_overlap(text: str, source_ngrams: set[tuple[str, ...]], n: int = 8) -> float:
    """The share of the text's word n-grams that also occur in the source (1.0: a patchwork of quotes)."""
    grams = ngrams(words(text), n)
    return sum(g in source_ngrams for g in grams) / len(grams) if grams else 0.0


def chance_copy_chars(reference: str, source: str, length: int, passages: int = 24) -> float:
    """The mean longest span that `passages` evenly spaced passages of `reference`, each `length`
    characters long, share verbatim with `source`: how much any new text of that kind "copies" by
    chance. With the held-out book as `reference`, the yardstick for generated samples."""
    step = max(1, (len(reference) - length) // passages)
    starts = range(0, max(1, len(reference) - length), step)[:passages]
    spans = [len(longest_copied_span(reference[s : s + length], source)) for s in starts]
    return sum(spans) / len(spans)
