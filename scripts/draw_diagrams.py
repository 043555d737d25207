"""Draw the diagrams that need no data (junglegpt/diagrams.py) into docs/diagrams/, for the README.

    .venv/bin/python scripts/draw_diagrams.py

The notebooks draw their own at run time (the split from the book, the block with the run's size).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from junglegpt import diagrams  # noqa: E402
from junglegpt.figures import save_figure  # noqa: E402
from junglegpt.sizes import get_size  # noqa: E402

FOLDER = Path(__file__).resolve().parent.parent / "docs" / "diagrams"

if __name__ == "__main__":
    for name, fig in (("pipeline", diagrams.pipeline()), ("gpt2_block_22M", diagrams.gpt2_block(get_size("22M")))):
        print(save_figure(fig, FOLDER, name))
