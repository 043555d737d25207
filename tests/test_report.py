"""junglegpt.report: what a committed run keeps of the run it comes from."""

from __future__ import annotations

import json

import nbformat

from junglegpt import report
from junglegpt.paths import OutputDirs


def _executed_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="trained: 1M\n"),
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "a table", "image/png": "iVBORw0KGgo="},
                               execution_count=1),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "Button()"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# A title"), cell]
    return nbformat.writes(nb)


def test_a_committed_notebook_keeps_its_text_and_loses_images_and_widget_state():
    nb = nbformat.reads(report.slimmed(_executed_notebook()), as_version=4)
    nbformat.validate(nb)
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result", "display_data"]
    assert outputs[0].text == "trained: 1M\n" and outputs[1].data == {"text/plain": "a table"}
    assert outputs[2].data == {"text/plain": "Button()"}
    assert "widgets" not in nb.metadata


def test_collect_copies_results_and_slimmed_executed_notebooks(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path / "repo")
    out = OutputDirs(tmp_path / "out").make()
    out.executed.mkdir(parents=True, exist_ok=True)
    (out.executed / "07_more_data.ipynb").write_text(_executed_notebook(), encoding="utf-8")
    (out.executed / "run_summary.json").write_text('{"notebooks": []}', encoding="utf-8")
    out.results_json.write_text('{"sizes": []}', encoding="utf-8")
    out.figures.mkdir(parents=True, exist_ok=True)
    (out.figures / "04_bpb_vs_size.png").write_bytes(b"\x89PNG figure")
    dest = report.collect(out, "a-run")
    assert (dest / "figures" / "04_bpb_vs_size.png").read_bytes() == b"\x89PNG figure"
    assert dest == tmp_path / "repo" / "results" / "a-run"
    assert json.loads((dest / "results.json").read_text()) == {"sizes": []}
    assert (dest / "run_summary.json").exists()
    copied = (dest / "executed" / "07_more_data.ipynb").read_text(encoding="utf-8")
    assert "image/png" not in copied and "trained: 1M" in copied
