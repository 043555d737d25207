"""The runner's summary shows, for each size, the training budget beside the time 03 took (issue 34)."""

from __future__ import annotations

import time

from junglegpt import run_all
from junglegpt.io import atomic_write_json, read_json
from junglegpt.paths import OutputDirs


def test_the_summary_puts_each_sizes_training_budget_beside_its_wall_time(tmp_path, monkeypatch, capsys):
    out = OutputDirs(tmp_path)

    def fake_run_job(job):
        if job.notebook == "03_train":  # what 03 leaves: the model's metrics, with its settings
            size = job.parameters["model_size"]
            atomic_write_json(out.model(size) / "metrics.json",
                              {"train_time_s": 48.04, "settings": {"time_budget_s": 60},
                               "step_budget": {"measure_s": 9.6}})
        return True, 81.5, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    monkeypatch.setattr(run_all, "_gpu_count", lambda: 0)
    assert run_all.main(["--profile", "quick", "--sizes", "1M", "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out.split("Summary")[1]
    assert "03_train_1M            ok          81.5 s   training 48 s + 10 s timing its step, of a 60 s budget" in said
    assert "01_data_exploration    ok          81.5 s\n" in said  # no budget: nothing beside it
    entries = {n["label"]: n for n in read_json(out.executed / "run_summary.json")["notebooks"]}
    assert entries["03_train_1M"]["train_time_s"] == 48.0 and entries["03_train_1M"]["time_budget_s"] == 60
    assert entries["03_train_1M"]["measure_s"] == 9.6
    assert "time_budget_s" not in entries["04_evaluate"]


def test_a_damaged_or_missing_metrics_file_leaves_the_summary_plain(tmp_path):
    out = OutputDirs(tmp_path)
    job = run_all.Job("03_train", {"model_size": "1M"}, tmp_path / "x.ipynb", "03_train_1M")
    assert run_all.training_time(out, job) == {}
    (out.model("1M")).mkdir(parents=True)
    (out.model("1M") / "metrics.json").write_text("{", encoding="utf-8")
    assert run_all.training_time(out, job) == {}


def test_on_a_cpu_the_quick_profile_trains_two_sizes_at_once_on_half_the_cores_each(tmp_path, monkeypatch):
    """Issue 34: what surrounds each size's minute (kernel, imports, saving) overlaps the other size's
    training. Each size gets half the cores; an OMP_NUM_THREADS the user set wins; the full profile
    and a GPU keep one size at a time (one per GPU)."""
    import threading

    assert run_all.sizes_at_once("quick", 0, 2) == 2
    assert run_all.sizes_at_once("quick", 0, 1) == run_all.sizes_at_once("full", 0, 8) == 1
    assert run_all.sizes_at_once("smoke", 0, 8) == 1 and run_all.sizes_at_once("quick", 1, 8) == 1
    seen, running, most = [], set(), [0]
    lock = threading.Lock()

    def fake_run_job(job):
        with lock:
            running.add(job.label)
            most[0] = max(most[0], len(running))
            seen.append((job.label, job.env.get("OMP_NUM_THREADS")))
        time.sleep(0.2)
        with lock:
            running.discard(job.label)
        return True, 1.0, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    monkeypatch.setattr(run_all, "_gpu_count", lambda: 0)
    monkeypatch.setattr("junglegpt.environment.physical_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert run_all.main(["--profile", "quick", "--sizes", "1M,3M,7M", "--out", str(tmp_path)]) == 0
    sizes = {label: threads for label, threads in seen if label.startswith("03_")}
    assert sizes == {"03_train_1M": "2", "03_train_3M": "2", "03_train_7M": "2"} and most[0] == 2
    assert all(threads is None for label, threads in seen if not label.startswith("03_"))

    seen.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run_all.main(["--profile", "quick", "--sizes", "1M,3M", "--out", str(tmp_path), "--force"]) == 0
    assert {threads for label, threads in seen if label.startswith("03_")} == {None}  # the user's 1 stands


def test_papermill_runs_without_the_libraries_loading_bars_unless_the_user_wants_them(tmp_path, monkeypatch):
    """transformers' "Loading weights" bar is a frozen widget in an executed copy (20 of them in 04)."""
    envs = []

    class Papermill:
        def __init__(self, cmd, env, **kwargs):
            envs.append(env)
            self.pid, self.returncode = -1, 0

        def communicate(self):
            return "", None

    monkeypatch.setattr(run_all.subprocess, "Popen", Papermill)
    job = run_all.Job("01_data_exploration", {}, tmp_path / "01.ipynb", "01")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    run_all.run_job(job)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    run_all.run_job(job)
    assert [env["HF_HUB_DISABLE_PROGRESS_BARS"] for env in envs] == ["1", "0"]


def test_a_second_run_that_skips_finished_notebooks_keeps_their_measured_times(tmp_path, monkeypatch):
    """./run_all.sh, then ./run_all.sh --extras: the summary must still say what 01 to 05 took."""
    def fake_run_job(job):
        return True, 12.3, ""

    monkeypatch.setattr(run_all, "run_job", fake_run_job)
    monkeypatch.setattr(run_all, "_gpu_count", lambda: 0)
    monkeypatch.setattr(run_all, "is_done", lambda out, job: job.notebook != "06_finetune")
    out = OutputDirs(tmp_path)
    atomic_write_json(out.executed / "run_summary.json", {"profile": "quick", "sizes": ["1M"], "seconds": 99.0,
                      "notebooks": [{"label": "01_data_exploration", "status": "ok", "seconds": 9.2}]})
    assert run_all.main(["--profile", "quick", "--sizes", "1M", "--out", str(tmp_path), "--extras"]) == 0
    entries = {n["label"]: n for n in read_json(out.executed / "run_summary.json")["notebooks"]}
    assert entries["01_data_exploration"] == {"label": "01_data_exploration", "status": "ok", "seconds": 9.2,
                                              "skipped": True}
    assert entries["06_finetune"]["seconds"] == 12.3 and "skipped" not in entries["06_finetune"]
    assert entries["02_tokenizer"]["status"] == "skipped" and entries["02_tokenizer"]["skipped"]  # never run
