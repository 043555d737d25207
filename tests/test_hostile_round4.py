"""Issue 33, round 4: run names that leave OUT/models, bare NaN in JSON, evaluations on a token,
an empty profile, a prompt holding <|endoftext|>, a truncated tokenizer, a NaN in metrics.json,
and Ctrl-C while the runner starts."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from junglegpt import run_all, runs, training
from junglegpt.generation import Request, prepare
from junglegpt.io import atomic_write_json, read_json, update_json
from junglegpt.paths import REPO_ROOT, OutputDirs

from .helpers import run_all_cli


def strict_json(text: str):
    """json.loads as JavaScript, jq and most non-Python readers read it: NaN and Infinity refused."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def small_tokenizer(folder: Path) -> Path:
    """A byte-level BPE tokenizer with <|endoftext|>, saved as notebook 02 saves one (a second's work)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(["Mowgli and Baloo ran through the jungle with Bagheera. " * 20], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(folder)
    return folder


# 4. A run name is a folder inside OUT/models, nothing else.

@pytest.mark.parametrize("name", ["../../escaped", "/tmp/anywhere", "finetuned/../../x", "", ".", "a//b", ".."])
def test_a_run_name_that_leaves_out_models_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="run_name") as err:
        OutputDirs(tmp_path).model(name)
    assert "OUT/models" in str(err.value)
    assert not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize("name", ["15M", "finetuned/gpt2", "more-data/15M", "finetuned/distilgpt2"])
def test_legitimate_run_names_stay_inside_out_models(tmp_path, name):
    out = OutputDirs(tmp_path)
    assert out.model(name) == out.models / name


def test_run_training_refuses_an_escaping_run_name_before_running_03(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "execute", lambda *a, **k: pytest.fail("03 ran with a run name outside OUT/models"))
    with pytest.raises(ValueError, match="run_name"):
        runs.run_training(OutputDirs(tmp_path), "../../escaped", profile="smoke")


# 5. Strict JSON: non-finite numbers are written as null.

def test_the_json_writer_writes_null_for_nan_and_infinity(tmp_path):
    path = atomic_write_json(tmp_path / "results.json", {"a": float("nan"), "rows": [{"s": float("inf")}, 1.5],
                                                         "t": (float("-inf"), 2)})
    assert strict_json(path.read_text()) == {"a": None, "rows": [{"s": None}, 1.5], "t": [None, 2]}
    update_json(path, {"b": float("nan")})
    assert strict_json(path.read_text())["b"] is None


def test_numpy_nan_is_written_as_null(tmp_path):
    import numpy as np

    path = atomic_write_json(tmp_path / "x.json", {"a": np.float64("nan"), "b": np.float32(1.5), "c": np.nan})
    assert strict_json(path.read_text()) == {"a": None, "b": 1.5, "c": None}


def committed_json_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "*.json"], cwd=REPO_ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_every_committed_json_file_parses_strictly():
    files = committed_json_files()
    assert any(name.startswith("results/") for name in files)
    bad = []
    for name in files:
        try:
            strict_json((REPO_ROOT / name).read_text(encoding="utf-8"))
        except ValueError as err:
            bad.append(f"{name}: {err}")
    assert not bad, "\n".join(bad)


def test_the_smoke_runs_json_files_parse_strictly(smoke_run):
    out, _ = smoke_run
    files = [out.results_json, out.root / "generations.json", *sorted(out.models.glob("**/metrics.json")),
             *sorted(out.executed.glob(".done/*.json")), out.executed / "run_summary.json"]
    assert out.results_json.exists() and len(list(out.models.glob("*/metrics.json"))) == 8
    for path in files:
        if path.exists():
            strict_json(path.read_text(encoding="utf-8"))


def test_read_json_still_reads_files_written_before(tmp_path):
    (tmp_path / "old.json").write_text('{"a": NaN}')
    assert math.isnan(read_json(tmp_path / "old.json")["a"])


# 6. Evaluations on a handful of tokens, an empty profile, a prompt holding <|endoftext|>.

def test_a_few_evaluation_tokens_are_allowed_with_a_warning_that_says_why(capsys):
    training.training_settings("1M", "smoke", val_tokens=1, train_eval_tokens=1)
    said = capsys.readouterr().out
    assert "val_tokens=1" in said and "train_eval_tokens=1" in said and "best" in said
    training.training_settings("1M", "smoke")
    training.training_settings("1M", "quick")
    assert capsys.readouterr().out == ""


def test_an_empty_profile_is_refused_like_an_empty_out(tmp_path):
    result = run_all_cli("--profile", "", "--out", str(tmp_path / "out"), timeout=120)
    assert result.returncode == 2
    assert "--profile" in result.stderr and "empty" in result.stderr
    assert not (tmp_path / "out" / "executed").exists()


def test_a_prompt_holding_end_of_text_gets_a_note(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(small_tokenizer(tmp_path / "tokenizer"))
    prepared = prepare(Request(prompt="Mowgli<|endoftext|>Baloo", max_new_tokens=5), tokenizer, 64)
    assert tokenizer.eos_token_id in prepared.input_ids[0].tolist()
    assert any("<|endoftext|>" in note for note in prepared.notes)
    plain = prepare(Request(prompt="Mowgli and Baloo", max_new_tokens=5), tokenizer, 64)
    assert not any("<|endoftext|>" in note for note in plain.notes)


# 8. A tokenizer that does not load is not a finished notebook 02.

def _out_with_split(root: Path) -> OutputDirs:
    out = OutputDirs(root)
    out.make()
    out.train_txt.write_text("Mowgli and Baloo ran. " * 50)
    out.val_txt.write_text("Bagheera watched. " * 20)
    small_tokenizer(out.tokenizer)
    return out


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.unlink()  # a new file: never write through a hard link
    path.write_text(text[: len(text) // 2])


def test_a_finished_02_whose_tokenizer_is_cut_short_runs_again_and_says_why(tmp_path):
    out = _out_with_split(tmp_path / "out")
    job = next(j for j in run_all.plan(out, "smoke", ["1M"]) if j.notebook == "02_tokenizer")
    job.executed.parent.mkdir(parents=True, exist_ok=True)
    job.executed.write_text("{}")
    atomic_write_json(run_all._done_marker(out, job.label), run_all._marker_content(job, out))
    assert run_all.stale_reason(out, job) is None
    _truncate(out.tokenizer / "tokenizer.json")
    why = run_all.stale_reason(out, job)
    assert why and "tokenizer" in why and "load" in why


def test_03_reruns_02_when_the_tokenizer_does_not_load_naming_the_file(tmp_path, monkeypatch, capsys):
    out = _out_with_split(tmp_path / "out")
    ran = []
    monkeypatch.setattr(runs, "execute", lambda out, name, label, parameters: ran.append(name))
    runs.ensure_split_and_tokenizer(out, "smoke")
    assert ran == []
    _truncate(out.tokenizer / "tokenizer.json")
    runs.ensure_split_and_tokenizer(out, "smoke")
    assert ran == ["02_tokenizer"]
    assert str(out.tokenizer) in capsys.readouterr().out


def test_tokenizer_problem_names_the_folder(tmp_path):
    folder = small_tokenizer(tmp_path / "tokenizer")
    assert runs.tokenizer_problem(folder) is None
    _truncate(folder / "tokenizer.json")
    problem = runs.tokenizer_problem(folder)
    assert problem and str(folder) in problem
    assert str(tmp_path / "none") in runs.tokenizer_problem(tmp_path / "none")


# 10. A metrics.json without finite numbers is not a finished size; 04's check names the size.

GOOD_METRICS = {"best_val_loss": 5.1, "best_val_bpb": 2.4, "train_loss_at_best": 5.0, "train_bpb_at_best": 2.3,
                "best_step": 3, "n_params": 1000, "steps_done": 3}


@pytest.mark.parametrize("damage", [{"best_val_bpb": float("nan")}, {"best_val_loss": None},
                                    {"best_val_bpb": "2.4"}, {"n_params": float("inf")}])
def test_metrics_without_finite_numbers_are_not_finished(tmp_path, damage):
    assert runs.metrics_problem(GOOD_METRICS) is None
    metrics = {**GOOD_METRICS, **damage}
    assert next(iter(damage)) in runs.metrics_problem(metrics)
    missing = dict(GOOD_METRICS)
    del missing["best_val_bpb"]
    assert "best_val_bpb" in runs.metrics_problem(missing)


def test_a_nan_in_a_sizes_metrics_means_retrain_in_run_all_and_in_03(tmp_path):
    out = _out_with_split(tmp_path / "out")
    signature = {"profile": "smoke", "seed": 1}
    metrics_path = out.model("1M") / "metrics.json"
    metrics_path.parent.mkdir(parents=True)
    metrics_path.write_text(json.dumps({**GOOD_METRICS, **signature, "best_val_bpb": float("nan")}))  # bare NaN
    why = run_all.size_stale_reason(out, "1M", "smoke")
    assert why and "best_val_bpb" in why
    finished, why = runs.finished_before(out.model("1M"), signature)
    assert not finished and "best_val_bpb" in why


def test_04s_check_names_the_size_whose_model_disagrees_with_its_log():
    runs.check_models_match_logs({"1M": 2.4, "3M": 2.2}, {"1M": 2.4001, "3M": 2.2})
    with pytest.raises(RuntimeError) as err:
        runs.check_models_match_logs({"1M": 2.4, "3M": 2.2}, {"1M": float("nan"), "3M": 2.2})
    message = str(err.value)
    assert "1M" in message and "3M" not in message.replace("--sizes 1M", "")
    assert "./run_all.sh --sizes 1M" in message


# 11. Ctrl-C: one line, and no kernel connection file left behind.

def _kernel_started(folder: Path, timeout: float = 90) -> None:
    """Wait until a kernel's connection file (tmp*.json, with its HMAC key) is written under `folder`."""
    deadline = time.monotonic() + timeout
    while not list(folder.rglob("tmp*.json")):
        assert time.monotonic() < deadline, "no kernel started"
        time.sleep(0.2)


@pytest.mark.parametrize("moment", [0.3, 2.0, "kernel running"])
def test_ctrl_c_prints_one_line_and_leaves_no_kernel_files(tmp_path, moment):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(private_tmp), "JUPYTER_RUNTIME_DIR": str(private_tmp / "runtime")}
    proc = subprocess.Popen([sys.executable, "-m", "junglegpt.run_all", "--profile", "smoke", "--sizes", "1M",
                             "--out", str(tmp_path / "out")], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            # as from a terminal: pytest-xdist's workers ignore SIGINT, and a child
                            # inherits that, so Python would never raise KeyboardInterrupt in it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    if moment == "kernel running":
        _kernel_started(private_tmp)
    else:
        time.sleep(moment)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the runner and the papermill it started
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and "Interrupted" in stderr, stderr
    time.sleep(2)  # a kernel left without its papermill goes within a second
    left = [str(p.relative_to(private_tmp)) for p in private_tmp.rglob("*.json")]
    assert not left, left



def test_ctrl_c_swallowed_inside_torchs_import_still_stops_the_runner(tmp_path):
    """torch's C start-up imports numpy and drops whatever that import raises, so a Ctrl-C landing
    there (0.3 s in on a fast machine) was lost and the run went on. A stand-in torch does the
    same, at a fixed moment: the interrupt must still come out of `_gpu_count`."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os, signal\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    sum(range(10_000))  # the handler runs between bytecodes, here\n"
        "except BaseException:\n"
        "    pass  # as torch's C code does with numpy's import\n"
        "class cuda:\n"
        "    device_count = staticmethod(lambda: 0)\n")
    script = ("import sys; sys.path.insert(0, sys.argv[1])\n"
              "from junglegpt.run_all import _gpu_count\n"
              "print('gpus', _gpu_count())\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert "gpus" not in done.stdout, done.stdout
    assert "KeyboardInterrupt" in done.stderr, done.stderr


def test_ctrl_c_while_sizes_train_side_by_side_stops_them_all(tmp_path, monkeypatch):
    """The sizes of 03 train in worker threads, which Ctrl-C does not reach: the runner stops their
    papermills itself, instead of waiting for them to finish training."""
    import threading

    stopped = []

    class Papermill:  # the first one ends at once; the second trains until it is stopped
        count = 0

        def __init__(self, cmd, **kwargs):
            Papermill.count += 1
            self.pid, self.returncode, self.ended = -Papermill.count, None, threading.Event()
            if Papermill.count == 1:
                self.ended.set()

        def communicate(self):
            assert self.ended.wait(30), "a papermill was left training"
            self.returncode = self.returncode if self.returncode is not None else 0
            return "", None

        def send_signal(self, sig):
            stopped.append(sig)
            self.returncode = -sig
            self.ended.set()

        def wait(self, timeout=None):
            self.ended.wait(timeout)

        def kill(self):
            self.send_signal(signal.SIGKILL)

    monkeypatch.setattr(run_all.subprocess, "Popen", Papermill)
    out = OutputDirs(tmp_path / "out")
    jobs = [j for j in run_all.plan(out, "smoke", ["1M", "3M"]) if j.notebook == "03_train"]

    def finish(job, *result):
        raise KeyboardInterrupt  # Ctrl-C, as the first size ends

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_all.run_in_order(jobs, out, force=True, gpus=0, finish=finish, skip=None, failed=[], parallel=2)
    assert time.monotonic() - started < 10
    # The second size's papermill was either running, and stopped, or (its worker not yet at it when
    # Ctrl-C came: under load) never started; never started and left training.
    assert (Papermill.count, stopped) in ((2, [signal.SIGINT]), (1, [])), (Papermill.count, stopped)


def test_ctrl_c_before_a_size_has_started_its_papermill_starts_none(tmp_path, monkeypatch):
    """The race CI met: Ctrl-C lands while the second size's worker is scheduled but has not yet
    started its papermill. The stop finds nothing to stop; the worker must then not start one
    that nobody would stop (before the fix, it trained until the fake's 30 s ran out)."""
    import threading

    stop_called, started = threading.Event(), []
    real_stop, real_command = run_all.stop_running_jobs, run_all.papermill_command

    def stop():
        real_stop()
        stop_called.set()

    def command(notebook, executed, parameters):
        if parameters.get("model_size") == "3M":  # held back until Ctrl-C has been handled
            assert stop_called.wait(10)
        return real_command(notebook, executed, parameters)

    class Papermill:
        def __init__(self, cmd, **kwargs):
            started.append(cmd)
            self.pid, self.returncode = -len(started), 0

        def communicate(self):
            return "", None

    monkeypatch.setattr(run_all, "stop_running_jobs", stop)
    monkeypatch.setattr(run_all, "papermill_command", command)
    monkeypatch.setattr(run_all.subprocess, "Popen", Papermill)
    out = OutputDirs(tmp_path / "out")
    jobs = [j for j in run_all.plan(out, "smoke", ["1M", "3M"]) if j.notebook == "03_train"]

    def finish(job, *result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_all.run_in_order(jobs, out, force=True, gpus=0, finish=finish, skip=None, failed=[], parallel=2)
    assert len(started) == 1, "a papermill was started after Ctrl-C"
    assert not run_all._stopping.is_set(), "the next run in this process could start nothing"
