"""junglegpt.report: what a committed run keeps of the run it comes from."""

from __future__ import annotations

import base64
import io
import json

import nbformat
import pytest

from junglegpt import report
from junglegpt.paths import OutputDirs


def _png(width: int, height: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


SMALL_PNG = _png(40, 30)


def _tqdm_state(box: str, left: str, value: float, total: float, right: str) -> dict:
    """A tqdm.notebook bar as papermill saves its widget state: an HBox of HTML, progress, HTML."""
    children = {f"{box}-l": ("HTMLModel", {"value": left}), f"{box}-p": ("FloatProgressModel",
                {"value": value, "max": total}), f"{box}-r": ("HTMLModel", {"value": right})}
    state = {key: {"model_name": name, "state": st} for key, (name, st) in children.items()}
    state[box] = {"model_name": "HBoxModel", "state": {"children": [f"IPY_MODEL_{k}" for k in children]}}
    return state


def _executed_notebook() -> str:
    nb = nbformat.v4.new_notebook()
    state = {**_tqdm_state("bar", "1M:\u2007100%", 3.0, 3.0, "\u20073/3\u2007[00:00&lt;00:00,\u20078.26step/s]"),
             "button": {"model_name": "ButtonModel", "state": {}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="trained: 1M\n"),
        nbformat.v4.new_output("display_data", data={"image/png": SMALL_PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("execute_result", data={"text/plain": "a table", "image/png": _png(2400, 1200)},
                               execution_count=1),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "bar"},
            "text/plain": "1M:   0%|          | 0/3 [00:00<?, ?step/s]"}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "button"}, "text/plain": "Button()"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# A title"), cell]
    return nbformat.writes(nb)


def test_a_committed_notebook_keeps_text_and_pictures_and_shows_progress_bars_finished():
    nb = nbformat.reads(report.slimmed(_executed_notebook()), as_version=4)
    nbformat.validate(nb)
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["stream", "display_data", "execute_result", "display_data",
                                                "display_data"]
    assert outputs[0].text == "trained: 1M\n"
    assert outputs[1].data == {"image/png": SMALL_PNG, "text/plain": "<Figure>"}  # small: left as it was
    from PIL import Image

    wide = Image.open(io.BytesIO(base64.b64decode(outputs[2].data["image/png"])))
    assert wide.size == (report.MAX_IMAGE_WIDTH, report.MAX_IMAGE_WIDTH // 2)
    assert outputs[3].data == {"text/plain": "1M: 100%|██████████| 3/3 [00:00<00:00, 8.26step/s]"}
    assert outputs[4].data == {"text/plain": "Button()"}  # not a progress bar: its text as it was
    assert "widgets" not in nb.metadata


def test_a_progress_bar_stopped_early_shows_where_it_stopped():
    state = _tqdm_state("b", "3M:\u200740%", 4.0, 10.0, "\u20074/10")
    assert report.progress_bar_text(state, "b") == "3M: 40%|████      | 4/10"
    assert report.progress_bar_text(state, "missing") is None


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
    assert "image/png" in copied and "trained: 1M" in copied and "widget-state" not in copied


def test_collect_keeps_one_copy_of_03_and_fresh_leaves_nothing_of_the_run_before(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path / "repo")
    out = OutputDirs(tmp_path / "out").make()
    out.executed.mkdir(parents=True, exist_ok=True)
    for name in ("03_train_1M", "03_train_3M", "03_train_finetuned_gpt2", "04_evaluate"):
        (out.executed / f"{name}.ipynb").write_text(_executed_notebook(), encoding="utf-8")
    old = tmp_path / "repo" / "results" / "a-run" / "executed" / "09_gone.ipynb"
    old.parent.mkdir(parents=True)
    old.write_text("{}", encoding="utf-8")
    dest = report.collect(out, "a-run", fresh=True)
    assert sorted(p.name for p in (dest / "executed").iterdir()) == ["03_train_1M.ipynb", "04_evaluate.ipynb"]


@pytest.mark.parametrize("name", ["..", "", ".", "/tmp/elsewhere", "a/b", "../x", ".hidden"])
def test_a_name_that_is_not_one_folder_under_results_is_refused_before_anything_is_deleted(tmp_path, monkeypatch,
                                                                                         name):
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path / "repo")
    kept = tmp_path / "repo" / "results" / "quick-cpu" / "results.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}", encoding="utf-8")
    out = OutputDirs(tmp_path / "out").make()
    out.results_json.write_text('{"sizes": []}', encoding="utf-8")
    with pytest.raises(report.ReportError, match="one folder name under results/"):
        report.collect(out, name, fresh=True)
    assert kept.exists() and (tmp_path / "repo").is_dir()


def test_an_out_that_holds_no_run_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path / "repo")
    with pytest.raises(report.ReportError, match="no such folder"):
        report.collect(OutputDirs(tmp_path / "missing"), "a-run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(report.ReportError, match="holds no run"):
        report.collect(OutputDirs(tmp_path / "empty"), "a-run")
    assert not (tmp_path / "repo" / "results" / "a-run").exists()


def test_a_run_whose_04_did_not_finish_is_reported_without_the_baseline_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path / "repo")
    out = OutputDirs(tmp_path / "out").make()
    out.results_json.write_text('{"sizes": []}', encoding="utf-8")  # no "baselines": 04 stopped early
    monkeypatch.setattr("sys.argv", ["report", "--out", str(out.root), "--name", "a-run"])
    report.main()
    assert "| size |" in capsys.readouterr().out
