"""The eight model sizes: one table, used by the training notebook, the tests and the README.

The names are the original project's; the shapes are ours, chosen so that each real parameter
count (embeddings included, the tied output head counted once) is within 10% of the original's
stated count, with our default 2,048-token vocabulary and 256 positions.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VOCAB_SIZE = 2048
N_POSITIONS = 256
# 256 bytes + <|endoftext|>; past ~8k tokens this book has no more words to merge
MIN_VOCAB, MAX_VOCAB = 257, 32_768


def check_vocab_size(vocab_size) -> int:
    """Notebook 02's `vocab_size` as a whole number in range, or an error that says what to choose."""
    if not (str(vocab_size).strip().isdigit() and MIN_VOCAB <= int(vocab_size) <= MAX_VOCAB):
        raise ValueError(f"vocab_size={vocab_size!r}: choose a whole number between {MIN_VOCAB} (the 256 bytes plus "
                         f"<|endoftext|>) and {MAX_VOCAB:,} (past ~8k this book has no more words to merge).")
    return int(vocab_size)


@dataclass(frozen=True)
class ModelSize:
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    target_params: float  # the count the original project gave this name

    def parameters_by_part(self, vocab_size: int = DEFAULT_VOCAB_SIZE, n_positions: int = N_POSITIONS) -> dict:
        """GPT-2's parameters, part by part, worked out by hand (notebook 03 and a test check it
        against the real model). d is the width, L the number of layers.

        Each layer has attention (d x 3d + 3d for queries, keys and values; d x d + d to project
        back), an MLP (d x 4d + 4d, then 4d x d + d) and two LayerNorms (a gain and a bias each);
        a final LayerNorm closes the stack. The output head shares the token embedding's weights,
        so it adds nothing.
        """
        d, n_layer = self.n_embd, self.n_layer
        return {
            "token embedding (shared with the output layer)": vocab_size * d,
            "position embedding": n_positions * d,
            "attention": n_layer * (4 * d * d + 4 * d),
            "MLP": n_layer * (8 * d * d + 5 * d),
            "LayerNorms": n_layer * 4 * d + 2 * d,
        }

    def n_params(self, vocab_size: int = DEFAULT_VOCAB_SIZE, n_positions: int = N_POSITIONS) -> int:
        """The total of `parameters_by_part`."""
        return sum(self.parameters_by_part(vocab_size, n_positions).values())


def count_parameters_by_part(model) -> dict:
    """A GPT2LMHeadModel's parameters counted from its tensors, grouped like `parameters_by_part`."""
    parts = {"wte": "token embedding (shared with the output layer)", "wpe": "position embedding",
             ".attn.": "attention", ".mlp.": "MLP", "ln_": "LayerNorms"}
    counts = dict.fromkeys(parts.values(), 0)
    for name, tensor in model.named_parameters():  # a tied tensor is listed once
        counts[next(part for key, part in parts.items() if key in name)] += tensor.numel()
    return counts


SIZES: dict[str, ModelSize] = {
    s.name: s
    for s in (
        ModelSize("1M", n_layer=5, n_embd=128, n_head=4, target_params=1.2e6),
        ModelSize("3M", n_layer=7, n_embd=192, n_head=3, target_params=3.5e6),
        ModelSize("7M", n_layer=9, n_embd=256, n_head=4, target_params=7.8e6),
        ModelSize("15M", n_layer=8, n_embd=384, n_head=6, target_params=15.2e6),
        ModelSize("22M", n_layer=12, n_embd=384, n_head=6, target_params=22.4e6),
        ModelSize("37M", n_layer=12, n_embd=512, n_head=8, target_params=37.6e6),
        ModelSize("59M", n_layer=8, n_embd=768, n_head=12, target_params=59.3e6),
        ModelSize("100M", n_layer=14, n_embd=768, n_head=12, target_params=100.4e6),
    )
}


class UnknownSizeError(ValueError):
    pass


def get_size(name: str) -> ModelSize:
    """Look a size up by name ("15M"; "15m" works too), or fail with the list of valid names."""
    key = str(name).strip().upper()
    if key not in SIZES:
        raise UnknownSizeError(
            f"unknown model size {name!r}: choose one of {', '.join(SIZES)} (see the table in README.md)."
        )
    return SIZES[key]


def parse_sizes(spec: str) -> list[str]:
    """'all' or a comma-separated list ('1M,3M') -> size names, in table order; 'all' in a list
    ('all,1M') is all of them too."""
    parts = [part.strip() for part in str(spec).split(",") if part.strip()]
    if any(part.lower() == "all" for part in parts):
        return list(SIZES)
    wanted = {get_size(part).name for part in parts}
    if not wanted:
        raise UnknownSizeError(f"no size given: use 'all' or a list such as 1M,3M (valid: {', '.join(SIZES)}).")
    return [name for name in SIZES if name in wanted]


def size_table_markdown(vocab_size: int = DEFAULT_VOCAB_SIZE) -> str:
    rows = [
        "| size | layers | width | heads | context | parameters | original's count |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in SIZES.values():
        rows.append(
            f"| {s.name} | {s.n_layer} | {s.n_embd} | {s.n_head} | {N_POSITIONS} | "
            f"{s.n_params(vocab_size) / 1e6:.2f}M | {s.target_params / 1e6:.1f}M |"
        )
    return "\n".join(rows)
