"""Removing from extra training text every passage that overlaps the text we evaluate on.

Several Kipling books reprint Jungle Book songs or stories. If one of those passages is also in our
validation text or in the held-out book, a model trained on it would be scored on text it has seen:
the "more data" experiment would measure memory, not generalisation. The rule here: a paragraph of
the extra text is dropped when it shares a span of `n_tokens` tokens, or of `n_chars` characters,
with a reference text. Characters are compared after lower-casing and collapsing whitespace, so that
a reprint with other line breaks or capitals is still caught; tokens (of the text with its whitespace
collapsed, so that runs of spaces do not count as words) catch shorter spans.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

N_TOKENS = 13
N_CHARS = 50

_SPACES = re.compile(r"\s+")


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def normalise(text: str) -> str:
    return collapse_spaces(text).lower()


def char_spans(text: str, n: int = N_CHARS) -> set[int]:
    """Hashes of every `n`-character span of the normalised text."""
    text = normalise(text)
    return {hash(text[i : i + n]) for i in range(len(text) - n + 1)}


def token_spans(ids: list[int], n: int = N_TOKENS) -> set[tuple[int, ...]]:
    return {tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)}


@dataclass
class Reference:
    """The spans of the texts that must not leak into training: built once, checked against many paragraphs."""

    encode: Callable[[str], list[int]]
    n_tokens: int = N_TOKENS
    n_chars: int = N_CHARS
    chars: set[int] = field(default_factory=set)
    tokens: set[tuple[int, ...]] = field(default_factory=set)

    def add(self, text: str) -> Reference:
        # Paragraph by paragraph, as the extra text is checked: a token span never straddles two
        # paragraphs on either side, so both sides are tokenized the same way.
        for para in text.split("\n\n"):
            self.chars |= char_spans(para, self.n_chars)
            self.tokens |= token_spans(self.encode(collapse_spaces(para)), self.n_tokens)
        return self

    def overlap(self, paragraph: str) -> str | None:
        """Why `paragraph` overlaps a reference text ("13 tokens" or "50 characters"), or None if it does not."""
        text = normalise(paragraph)
        n = self.n_chars
        if any(hash(text[i : i + n]) in self.chars for i in range(len(text) - n + 1)):
            return f"{n} characters"
        ids = self.encode(collapse_spaces(paragraph))
        k = self.n_tokens
        if any(tuple(ids[i : i + k]) in self.tokens for i in range(len(ids) - k + 1)):
            return f"{k} tokens"
        return None


@dataclass
class BookReport:
    title: str
    paragraphs: int
    removed_paragraphs: int
    chars: int
    removed_chars: int
    examples: list[str]

    @property
    def removed_share(self) -> float:
        return self.removed_chars / self.chars if self.chars else 0.0


def decontaminate(title: str, text: str, reference: Reference, n_examples: int = 3) -> tuple[str, BookReport]:
    """`text` without its paragraphs that overlap `reference`, and a report of what was removed."""
    kept, removed = [], []
    for para in (p for p in text.split("\n\n") if p.strip()):
        (removed if reference.overlap(para) else kept).append(para)
    report = BookReport(
        title=title,
        paragraphs=len(kept) + len(removed),
        removed_paragraphs=len(removed),
        chars=sum(map(len, kept)) + sum(map(len, removed)),
        removed_chars=sum(map(len, removed)),
        examples=[p[:160] for p in sorted(removed, key=len, reverse=True)[:n_examples]],
    )
    return "\n\n".join(kept), report


def count_shared_spans(text: str, references: Iterable[str], n: int = N_CHARS) -> int:
    """Positions of `text` where an `n`-character span of a reference text starts: 0 after decontamination.

    An independent check of `decontaminate`: it compares the strings themselves (not their hashes),
    over the whole text at once (so spans across paragraph boundaries count too).
    """
    spans = set()
    for reference in references:
        ref = normalise(reference)
        spans.update(ref[i : i + n] for i in range(len(ref) - n + 1))
    text = normalise(text)
    return sum(text[i : i + n] in spans for i in range(len(text) - n + 1))


def reference_from(texts: Iterable[str], encode: Callable[[str], list[int]], **kwargs) -> Reference:
    reference = Reference(encode, **kwargs)
    for text in texts:
        reference.add(text)
    return reference
