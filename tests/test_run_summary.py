"""The runner's summary shows, for each size, the training budget beside the time 03 took (issue 34)."""

from __future__ import annotations

from junglegpt import run_all
from junglegpt.io import atomic_write_json, read_json
from junglegpt.paths import OutputDirs


def test_the_summary_puts_each_sizes_training_budget_beside_its_wall_time(tmp_path, monkeypatch, capsys):
    out = OutputDirs(tmp_path)

    def fake_run_job(job):
        if job.notebook == "03_train":  # what 03 leaves: the model's metrics, with its settings
            size = job.parameters["model_size"]
            atomic_write_json(out.model(size) / "metrics.json",
                              {"train_time_s": 58.04, "settings": {"time_budget_s": 60}})
        return True, 81.5, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    monkeypatch.setattr(run_all, "_gpu_count", lambda: 0)
    assert run_all.main(["--profile", "quick", "--sizes", "1M", "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out.split("Summary")[1]
    assert "03_train_1M            ok          81.5 s   training 58 s of a 60 s budget" in said
    assert "01_data_exploration    ok          81.5 s\n" in said  # no budget: nothing beside it
    entries = {n["label"]: n for n in read_json(out.executed / "run_summary.json")["notebooks"]}
    assert entries["03_train_1M"]["train_time_s"] == 58.0 and entries["03_train_1M"]["time_budget_s"] == 60
    assert "time_budget_s" not in entries["04_evaluate"]


def test_a_damaged_or_missing_metrics_file_leaves_the_summary_plain(tmp_path):
    out = OutputDirs(tmp_path)
    job = run_all.Job("03_train", {"model_size": "1M"}, tmp_path / "x.ipynb", "03_train_1M")
    assert run_all.training_time(out, job) == {}
    (out.model("1M")).mkdir(parents=True)
    (out.model("1M") / "metrics.json").write_text("{", encoding="utf-8")
    assert run_all.training_time(out, job) == {}
