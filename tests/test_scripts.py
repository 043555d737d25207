"""The scripts behind committed results: the recipe study's rule and its variants."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from junglegpt import training

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ablation = _load("ablation")


def _rows(**means):
    return {name: {"mean_val_bpb": mean} for name, mean in means.items()}


def test_a_change_is_kept_only_when_it_beats_the_base_by_more_than_the_threshold():
    rows = _rows(base=1.930, ema=1.905, **{"dropout0.2": 1.927, "dropout0.3": 1.921, "wd0.5": 1.9251})
    decisions = ablation.choose(rows)
    assert decisions["ema"] == {"best_variant": "ema", "gain_bpb": 0.025, "keep": True}
    assert decisions["dropout"]["best_variant"] == "dropout0.3" and decisions["dropout"]["keep"]  # the better of two
    assert not decisions["weight decay"]["keep"]  # 0.0049: under the threshold
    assert "vocabulary" not in decisions  # not measured: no decision


@pytest.mark.parametrize("name", list(ablation.VARIANTS))
def test_every_variant_states_the_whole_recipe_so_new_defaults_cannot_change_it(name):
    params = ablation.VARIANTS[name][1]
    assert {"schedule", "ema_decay", "weight_decay"} <= set(params)
    training.training_settings("1M", "full", **params)  # and it is a valid run


tidy_notebooks = _load("tidy_notebooks")


def test_the_committed_notebooks_are_tidy():
    untidy = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
              if tidy_notebooks.formatted(tidy_notebooks.tidy(json.loads(p.read_text()), p.stem[:2])) != p.read_text()]
    assert not untidy, f"run scripts/tidy_notebooks.py: {untidy}"


def test_tidying_clears_outputs_and_gives_new_cells_unique_ids():
    notebook = {"cells": [
        {"cell_type": "code", "id": "01-00", "metadata": {"execution": {"t": 1}}, "source": ["x = 1"],
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1"]}], "execution_count": 3},
        {"cell_type": "markdown", "metadata": {}, "source": ["new"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["newer"]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    tidied = tidy_notebooks.tidy(notebook, "01")
    code = tidied["cells"][0]
    assert code["outputs"] == [] and code["execution_count"] is None and code["metadata"] == {}
    ids = [cell["id"] for cell in tidied["cells"]]
    assert ids[0] == "01-00" and len(set(ids)) == 3
