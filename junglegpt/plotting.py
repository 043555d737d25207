"""One look for every figure, and saving them so that a half-written PNG never replaces a good one."""

from __future__ import annotations

import io
from pathlib import Path

from .io import atomic_write_bytes


def setup_style() -> None:
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def save_figure(fig, folder: str | Path, name: str, label: str | None = None) -> Path:
    """Save `fig` as folder/name.png; `label` (e.g. 'quick, CPU') goes in the bottom-right corner."""
    if label:
        fig.text(0.995, 0.005, label, ha="right", va="bottom", fontsize=8, color="0.4")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return atomic_write_bytes(Path(folder) / f"{name}.png", buffer.getvalue())
