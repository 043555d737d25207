"""Run the notebook series with papermill: `python -m junglegpt.run_all --help` (run_all.sh calls it).

Each notebook runs in its own papermill process, with its executed copy written to
OUT/executed/. Work that finished earlier with the same parameters is skipped unless --force.
"""

from __future__ import annotations

import sys


def _one_line_on_interrupt(kind, value, traceback, default=sys.excepthook) -> None:
    """Ctrl-C while the runner starts (its imports, torch's among them, before `main` can catch it):
    one line instead of a traceback of importlib's frames."""
    if issubclass(kind, KeyboardInterrupt):
        print("\nInterrupted while starting, before any notebook ran. Run the same command again to start.",
              file=sys.stderr)
    else:
        default(kind, value, traceback)


if __name__ == "__main__":  # first, so that it covers the imports below
    sys.excepthook = _one_line_on_interrupt

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import environment
from .data import DATA_DIR_ENV
from .io import DamagedFileError, atomic_write_json, file_sha256, read_json
from .papermill_cli import KERNEL_FILES_ENV
from .paths import NOTEBOOKS_DIR, OutputDirs
from .profiles import PROFILES, resolve_profile
from .runs import saves_after_every_cell
from .sizes import UnknownSizeError, parse_sizes

# The series, in order. A notebook that does not exist yet is left out.
SERIES = (
    "01_data_exploration",
    "02_tokenizer",
    "03_train",  # once per model size
    "04_evaluate",
    "05_generate",
    "06_finetune",  # with --extras
    "07_more_data",  # with --extras
    "08_publish",  # a dry run unless --push
)
PER_SIZE = {"03_train"}
EXTRAS = {"06_finetune", "07_more_data"}  # the experiments beyond the eight sizes: slower, and optional
# What each notebook reads: if any of it changes, a finished run is stale and runs again. Paths are
# relative to OUT (a copied or moved OUT reruns nothing); "book:NAME" is a book found by
# junglegpt.data (in JUNGLE_DATA_DIR, data/raw/ or Kaggle's input), recorded by its title.
# Notebook 03's sizes are recognised by their own metrics.json instead (`size_stale_reason`).
UPSTREAM = {
    "01_data_exploration": ("book:JUNGLE_BOOK", "book:SECOND_JUNGLE_BOOK"),
    "02_tokenizer": ("data/train.txt",),
    "04_evaluate": ("data/train.txt", "data/val.txt", "tokenizer/tokenizer.json", "models/*/metrics.json",
                    "models/*/model.safetensors", "book:SECOND_JUNGLE_BOOK"),
    "05_generate": ("models/*/metrics.json", "models/*/model.safetensors"),
    "06_finetune": ("data/val.txt", "models/*/metrics.json", "book:SECOND_JUNGLE_BOOK"),
    "07_more_data": ("data/train.txt", "data/val.txt", "tokenizer/tokenizer.json", "models/*/metrics.json",
                     "book:SECOND_JUNGLE_BOOK"),
    "08_publish": ("models/*/metrics.json", "models/*/model.safetensors", "results.json"),
}
HEADLESS = {"05_generate": {"interactive": False}}  # papermill has no widget frontend


def training_time(out: OutputDirs, job: Job) -> dict:
    """A size's training time beside its budget, from its metrics.json ({} for other notebooks, or a
    run without a budget): what the time of a 03 spent outside its training loop shows."""
    size = job.parameters.get("model_size") if job.notebook == "03_train" else None
    path = out.model(size) / "metrics.json" if size else None
    if path is None or not path.exists():
        return {}
    try:
        metrics = read_json(path)
        timing = (metrics.get("step_budget") or {}).get("measure_s", 0.0)  # paid from the budget too
        return {"train_time_s": round(float(metrics["train_time_s"]), 1),
                "measure_s": round(float(timing), 1),
                "time_budget_s": metrics["settings"]["time_budget_s"]}
    except (DamagedFileError, KeyError, TypeError, ValueError):  # the summary is not the place to fail
        return {}


@dataclass
class Job:
    notebook: str
    parameters: dict
    executed: Path
    label: str
    env: dict = field(default_factory=dict)
    why: str = ""  # why it runs: "--force", "data/train.txt changed", ...


def _done_marker(out: OutputDirs, label: str) -> Path:
    return out.executed / ".done" / f"{label}.json"


def is_done(out: OutputDirs, job: Job) -> bool:
    job.why = stale_reason(out, job) or ""
    return not job.why


def stale_reason(out: OutputDirs, job: Job) -> str | None:
    """Why `job` must run, in words; None if it finished before with these parameters and inputs."""
    if not job.executed.exists():
        return "not run before"
    if job.notebook in PER_SIZE:
        return size_stale_reason(out, job.parameters["model_size"], job.parameters["profile"])
    marker = _done_marker(out, job.label)
    if not marker.exists():
        return "not run before"
    try:
        before = read_json(marker)
    except DamagedFileError:
        return "its completion record is damaged"
    now = _marker_content(job, out)
    if before.get("parameters") != now["parameters"]:
        changed = sorted(k for k in {**before.get("parameters", {}), **now["parameters"]}
                         if before.get("parameters", {}).get(k) != now["parameters"].get(k))
        return f"its parameters changed ({', '.join(changed)})"
    if before.get("notebook_sha256") != now["notebook_sha256"]:
        return "the notebook changed"
    old = before.get("inputs", {})
    changed = [name for name in {**old, **now["inputs"]} if old.get(name) != now["inputs"].get(name)]
    if changed:
        return f"{', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} changed since it ran"
    if job.notebook == "02_tokenizer":  # finished: its tokenizer loads (as a finished size: its model loads)
        from .runs import tokenizer_problem

        return tokenizer_problem(out.tokenizer)
    return None


def size_is_trained(out: OutputDirs, size: str, profile: str) -> bool:
    return size_stale_reason(out, size, profile) is None


def size_stale_reason(out: OutputDirs, size: str, profile: str) -> str | None:
    """Why OUT/models/<size> must be trained (again), in words; None if it was trained in this profile
    on the current training text and tokenizer, and loads. A size trained before notebook 01 or 02
    was rerun (another split, another vocab_size) is stale; so is one whose files are damaged."""
    from .runs import metrics_problem, model_problem

    metrics_path = out.model(size) / "metrics.json"
    if not metrics_path.exists():
        return "not trained yet"
    if not (out.train_txt.exists() and (out.tokenizer / "tokenizer.json").exists()):
        return "the split or the tokenizer is missing"
    try:
        metrics = read_json(metrics_path)
    except DamagedFileError:
        return f"{metrics_path.relative_to(out.root)} is damaged"
    problem = metrics_problem(metrics)
    if problem:
        return f"{problem}: it did not finish properly"
    if metrics.get("profile") != profile:
        return f"trained in the {metrics.get('profile')} profile"
    if metrics.get("train_sha256") != _sha256(out.train_txt):
        return "data/train.txt changed since it was trained"
    if metrics.get("tokenizer_sha256") != _sha256(out.tokenizer / "tokenizer.json"):
        return "the tokenizer changed since it was trained"
    problem = model_problem(out.model(size))
    return f"its saved model is damaged: {problem}" if problem else None


_hashes: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    """file_sha256, remembered for a file whose size and modification time have not changed."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = file_sha256(path)
    return _hashes[key]


def input_hashes(out: OutputDirs, notebook: str) -> dict[str, str]:
    """The SHA-256 of everything `notebook` reads (UPSTREAM), by its path relative to OUT or its title."""
    from . import data

    hashes = {}
    for pattern in UPSTREAM.get(notebook, ()):
        if pattern.startswith("book:"):
            known = getattr(data, pattern.removeprefix("book:"))
            path = data.local_copy(known, out.raw)
            hashes[known.title] = _sha256(path) if path else "downloaded (no local copy)"
        else:
            for path in sorted(out.root.glob(pattern)):
                hashes[str(path.relative_to(out.root))] = _sha256(path)
    return hashes


def _marker_content(job: Job, out: OutputDirs) -> dict:
    """What a finished run is recognised by: its parameters (less the output folder, so that a copied
    OUT is still finished), the notebook's source and the hash of each input.

    Editing the notebook, changing a book, or retraining a size that notebook 04 evaluated makes the
    run stale.
    """
    source = (NOTEBOOKS_DIR / f"{job.notebook}.ipynb").read_bytes()
    parameters = {k: v for k, v in job.parameters.items() if k != "out_dir"}
    return {"parameters": parameters, "notebook_sha256": hashlib.sha256(source).hexdigest(),
            "inputs": input_hashes(out, job.notebook)}


def papermill_command(notebook: Path, executed: Path, parameters: dict, cwd: Path = NOTEBOOKS_DIR,
                      kernel: str = "python3") -> list[str]:
    """The command that executes `notebook` into `executed` with these parameters: papermill through
    junglegpt.papermill_cli, saving the executed copy as `runs.saves_after_every_cell` says."""
    cmd = [sys.executable, "-m", "junglegpt.papermill_cli", str(notebook), str(executed),
           "--cwd", str(cwd), "--kernel", kernel, "--no-progress-bar"]
    if not saves_after_every_cell(parameters):
        cmd.append("--no-request-save-on-cell-execute")
    for key, value in parameters.items():
        cmd += ["-p", key, str(value)]
    return cmd


# What a notebook run by papermill does not show (a variable the user set wins). transformers' and
# huggingface_hub's own progress bars ("Loading weights" each time a model is loaded: 20 of them in
# notebook 04) are widgets in an executed copy, frozen at whatever they showed, and nobody watches a
# papermill run; the notebooks' own bars (03's training, tqdm.auto) are not theirs and stay.
QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}

# The papermill processes running now (several when sizes train at once), so that an interrupted
# runner can stop them, whichever thread started them.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
# Set once the runner is stopping: a worker thread that reaches its papermill only after Ctrl-C
# (it was between being scheduled and starting it) must not start one that nobody will stop.
_stopping = threading.Event()
STOP_GRACE_S = 5.0  # how long papermill gets to shut its kernel down before it is killed


def stop_running_jobs() -> None:
    """Stop every papermill still running: SIGINT first, so that it shuts its kernel down as on Ctrl-C
    in a terminal, then SIGKILL for one that has not ended within STOP_GRACE_S."""
    with _running_lock:
        _stopping.set()
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _kernels_started_by(pid: int) -> list[int]:
    """The kernels that papermill `pid` started and that still run (Linux; elsewhere none are found).
    jupyter_client gives each kernel JPY_PARENT_PID; it runs in a session of its own, so neither
    Ctrl-C nor the death signal reaches it."""
    mark, found = f"JPY_PARENT_PID={pid}".encode(), []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if mark in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def _still_running(pid: int) -> bool:
    """Alive and not a zombie (in a container, what a killed papermill leaves may never be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _end_kernels_started_by(pid: int, wait_s: float = 10.0) -> None:
    """Wait for the kernels of a papermill that has ended to end too (ipykernel sees within a second
    that its papermill is gone), and kill one that has not within `wait_s` (one still starting)."""
    kernels = _kernels_started_by(pid)
    deadline = time.monotonic() + wait_s
    while kernels and time.monotonic() < deadline:
        time.sleep(0.2)
        kernels = [k for k in kernels if _still_running(k)]
    for kernel in kernels:
        with contextlib.suppress(ProcessLookupError):
            os.kill(kernel, signal.SIGKILL)


def run_job(job: Job) -> tuple[bool, float, str]:
    """Execute one notebook with papermill in a child process; return (ok, seconds, error tail).

    The kernel's connection file (which holds the key that lets anyone run code in the kernel) goes
    to a private folder that is deleted when the notebook ends, however it ends: papermill removes
    it itself only when it ends normally, and an interrupted run left tmp*.json files behind in the
    system's temporary folder."""
    job.executed.parent.mkdir(parents=True, exist_ok=True)
    # papermill, and with it its kernel, die with this process (junglegpt/die_with_parent.py)
    cmd = [sys.executable, "-m", "junglegpt.die_with_parent", str(os.getpid()),
           *papermill_command(NOTEBOOKS_DIR / f"{job.notebook}.ipynb", job.executed, job.parameters)]
    kernel_files = tempfile.mkdtemp(prefix="junglegpt-kernel-")  # 0700: this user's only
    start, proc = time.perf_counter(), None
    try:
        with _running_lock:  # started and recorded in one step, so that a stop cannot fall between them
            if _stopping.is_set():
                return False, 0.0, "not started: the run was interrupted"
            env = {**QUIET_LIBRARIES, **os.environ, **job.env, KERNEL_FILES_ENV: kernel_files}
            proc = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            _running.add(proc)
        try:
            stdout, _ = proc.communicate()
        except BaseException:  # interrupted (Ctrl-C): stop it, and any other, before the folder goes
            stop_running_jobs()
            raise
        finally:
            with _running_lock:
                _running.discard(proc)
    finally:
        if proc is not None:  # a kernel still starting would write its connection file again
            _end_kernels_started_by(proc.pid)
        shutil.rmtree(kernel_files, ignore_errors=True)
    seconds = time.perf_counter() - start
    tail = "\n".join((stdout or "").strip().splitlines()[-15:]) if proc.returncode else ""
    if "DeadKernelError" in tail:
        tail += ("\nThe kernel died, probably out of memory. Rerun the same command: training resumes from the "
                 "last checkpoint. If it dies again, use a smaller micro_batch_size (a parameter of 03_train) "
                 "or a smaller model size, or close other programs.")
    return proc.returncode == 0, seconds, tail


def announce_and_run(job: Job) -> tuple[bool, float, str]:
    print(f"  {job.label:<22} running ({job.why or 'not run before'}) ...", flush=True)
    return run_job(job)


def plan(out: OutputDirs, profile: str, sizes: list[str], force: bool = False, push: str | None = None,
         extras: bool = False, allow_quick: bool = False) -> list[Job]:
    jobs = []
    # The token is never a parameter: notebook 08 reads it from a secret store itself.
    publish = {"08_publish": {"push": True, "namespace": push, "allow_quick": allow_quick}} if push else {}
    for name in SERIES:
        if not (NOTEBOOKS_DIR / f"{name}.ipynb").exists() or (name in EXTRAS and not extras):
            continue
        base = {"out_dir": str(out.root), "profile": profile, **HEADLESS.get(name, {}), **publish.get(name, {})}
        if name in EXTRAS and force:
            base["force"] = True  # retrain what they train, too
        if name in PER_SIZE:
            for size in sizes:
                label = f"{name}_{size}"
                params = {**base, "model_size": size, **({"force": True} if force else {})}
                jobs.append(Job(name, params, out.executed / f"{label}.ipynb", label, why="--force" if force else ""))
        else:
            jobs.append(Job(name, base, out.executed / f"{name}.ipynb", name, why="--force" if force else ""))
    return jobs


def out_dir_problem(out: str) -> str | None:
    """Why `out` cannot hold the series' outputs (None if it can): checked before any notebook runs."""
    if not out.strip():
        return "--out is empty: name a folder, e.g. --out ~/junglegpt-out (the default is the repository root)"
    path = Path(out).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"--out {out}: {existing} is a file, not a folder; choose another path"
    try:
        (path / "executed").mkdir(parents=True, exist_ok=True)
        probe = path / "executed" / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        return f"--out {out}: cannot write there ({err.strerror}); choose a folder you can write to"
    return None


LOCK_NAME = ".junglegpt-run.lock"
UNREADABLE_LOCK_S = 3.0  # a run writes its lock within milliseconds of making it


class OutInUseError(RuntimeError):
    """Another run is writing to the same output folder."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to someone else
        return True
    return True


@contextlib.contextmanager
def exclusive_use(out: OutputDirs, on_note=print):
    """Hold OUT/.junglegpt-run.lock while the series runs, so that two runs never write one folder.

    The lock file says which process holds it. It is removed when the run ends, however it ends; a
    lock left by a process that no longer exists (killed with kill -9, or a machine restart) is
    taken over with a note.
    """
    lock = out.root / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    unreadable_since = None
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(lock.read_text(encoding="utf-8"))
                if not isinstance(holder, dict):
                    raise ValueError("not a lock")
            except (OSError, ValueError):
                holder = {}  # being written this instant (a run starting), or damaged: look again
                unreadable_since = unreadable_since or time.monotonic()
                if time.monotonic() - unreadable_since > UNREADABLE_LOCK_S:
                    raise OutInUseError(
                        f"{lock} is empty or unreadable, so it names no run: a run that was stopped while starting "
                        f"left it, or it was damaged. If no other run is using {out.root}, delete that file and run "
                        "again.") from None
                time.sleep(0.2)
            if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) \
                    and not _process_alive(holder["pid"]):
                on_note(f"note: taking over a lock left in {out.root} by pid {holder['pid']} (started at "
                        f"{holder.get('started')}), which is no longer running")
                lock.unlink(missing_ok=True)
                continue
            if holder:
                elsewhere = "" if holder.get("host") == me["host"] else f" on {holder.get('host')}"
                raise OutInUseError(
                    f"another run (pid {holder.get('pid')}{elsewhere}, started at {holder.get('started')}) is using "
                    f"{out.root}. Wait for it to finish, or choose another --out. If no such run exists, delete "
                    f"{lock}.") from None
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _gpu_count() -> int:
    """The CUDA GPUs torch sees. Importing torch is where a Ctrl-C that comes early lands, and torch's
    C start-up imports numpy and drops any error that import raises, KeyboardInterrupt included: the
    run went on as if no key had been pressed. So a Ctrl-C is noted here, and raised once torch is in."""
    pressed = []
    handler = signal.getsignal(signal.SIGINT)
    watch = callable(handler)  # not where Ctrl-C is ignored (SIG_IGN) or kills at once (SIG_DFL)

    def note(signum, frame):
        pressed.append(signum)
        handler(signum, frame)

    if watch:
        signal.signal(signal.SIGINT, note)
    try:
        import torch

        count = torch.cuda.device_count()
    except ImportError:
        count = 0
    finally:
        if watch:
            signal.signal(signal.SIGINT, handler)
    if pressed:
        raise KeyboardInterrupt
    return count


def sizes_at_once(profile: str, gpus: int, cores: int | None) -> int:
    """How many sizes of notebook 03 train at once unless --parallel says: one per GPU; on a CPU in
    the quick profile two, each on half the cores. Every size still gets its whole time budget, but
    what surrounds its training (the kernel starting, imports, saving, reloading: about 25 s a size
    on 2 cores, issue 34) overlaps the other size's training instead of adding to it; and a small
    model barely uses a second core. The full profile trains for a step count, not a time, so it
    keeps every core for one size at a time."""
    if gpus:
        return gpus
    return 2 if profile == "quick" and (cores or 1) >= 2 else 1


def run_in_order(jobs: list[Job], out: OutputDirs, force: bool, gpus: int, finish, skip, failed: list,
                 parallel: int | None = None) -> None:
    """Run the jobs in series order; the sizes of notebook 03 as one group, `parallel` at a time
    (default: one per GPU, or one on a CPU), spread over the GPUs; on a CPU, the cores shared out
    among them (OMP_NUM_THREADS, unless it is set already)."""
    _stopping.clear()  # a new run (in tests, the same process runs several)
    i = 0
    while i < len(jobs):
        job = jobs[i]
        if job.notebook in PER_SIZE:
            group = [j for j in jobs[i:] if j.notebook == job.notebook]
            i += len(group)
            todo = []
            for j in group:
                if not force and is_done(out, j):
                    skip(j)
                else:
                    todo.append(j)
            workers = parallel or max(1, gpus)
            threads = None
            if not gpus and workers > 1 and not os.environ.get("OMP_NUM_THREADS"):
                threads = str(max(1, (environment.physical_cores() or 1) // min(workers, len(todo) or 1)))
            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    futures = {}
                    try:
                        for k, j in enumerate(todo):
                            if gpus > 1:
                                j.env["CUDA_VISIBLE_DEVICES"] = str(k % gpus)
                            if threads:
                                j.env["OMP_NUM_THREADS"] = threads
                            futures[pool.submit(announce_and_run, j)] = j
                        for fut in concurrent.futures.as_completed(futures):
                            finish(futures[fut], *fut.result())
                    except BaseException:  # Ctrl-C reaches this thread only: stop the sizes in the others
                        for fut in futures:
                            fut.cancel()
                        stop_running_jobs()
                        raise
            finally:  # every worker has ended: a later run in this process may start papermills again
                _stopping.clear()
            if failed:
                break  # the notebooks after this group need every size it trains
            continue
        i += 1
        if not force and is_done(out, job):
            skip(job)
            continue
        finish(job, *announce_and_run(job))
        if failed:
            break  # every later notebook needs this one's output


def resume_hint(jobs: list[Job], out: OutputDirs) -> str:
    """What a rerun will do after an interruption: which size resumes from which step."""
    resuming = []
    for job in jobs:
        if job.notebook in PER_SIZE:
            size = job.parameters["model_size"]
            steps = sorted((out.model(size) / "training").glob("step_*"))
            if steps and not (out.model(size) / "metrics.json").exists():
                resuming.append(f"{size} from step {int(steps[-1].name.split('_')[1])}")
    where = f" ({', '.join(resuming)})" if resuming else ""
    return (f"Rerun the same command to resume{where}: finished notebooks are skipped, and a size in training "
            "resumes from its last checkpoint.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.sh",
        description="Run the JungleGPT notebooks in order with papermill.",
        epilog="Executed notebooks go to OUT/executed/. A rerun skips finished work; --force redoes it.",
    )
    parser.add_argument("--profile", default="auto", help=f"one of {', '.join(PROFILES)}; "
                        "default: full where a CUDA GPU is found, else quick")
    parser.add_argument("--sizes", default="all", help="model sizes to train: 'all' or a list such as 1M,3M,7M")
    parser.add_argument("--out", default=str(OutputDirs(NOTEBOOKS_DIR.parent).root),
                        help="output folder (default: the repository root, so data/ and figures/ fill in place); "
                             "on Colab, 'drive' is a folder on your Google Drive")
    parser.add_argument("--force", action="store_true", help="rerun notebooks that finished before")
    parser.add_argument("--extras", action="store_true",
                        help="also run 06 (fine-tune pretrained GPT-2) and 07 (train on 23 more Kipling books)")
    parser.add_argument("--push", metavar="NAMESPACE",
                        help="publish every trained size to the Hugging Face Hub as NAMESPACE/junglegpt-<size>, in a "
                        "collection; the token comes from HF_TOKEN or your login, never the command line")
    parser.add_argument("--allow-quick", action="store_true",
                        help="with --push: also publish sizes trained only in the smoke or quick profile")
    parser.add_argument("--parallel", type=int, metavar="N",
                        help="sizes trained at once (default: one per GPU; on a CPU, two in the quick profile, "
                             "sharing the cores, else one). On one big GPU the small sizes leave it mostly idle, "
                             "so several at once finish sooner; on a T4 keep the default")
    parser.add_argument("--kaggle", nargs="?", const="", metavar="FOLDER",
                        help="instead of running here, write the sweep for a Kaggle T4 (a dataset with the package and "
                             "the books, and a kernel that runs the series) to FOLDER (default OUT/kaggle), and send "
                             "both with the kaggle CLI if Kaggle credentials are set up; the profile defaults to full")
    args = parser.parse_args(argv)
    if os.environ.get(DATA_DIR_ENV):  # the notebooks run in other folders: a relative path means ours
        os.environ[DATA_DIR_ENV] = os.path.abspath(os.environ[DATA_DIR_ENV])

    if not args.profile.strip():  # as --out '' is refused: an empty value is a mistake, not "auto"
        parser.error(f"--profile is empty: choose one of {', '.join(PROFILES)}, or leave --profile out (auto: full "
                     "where a CUDA GPU is found, else quick)")
    if args.kaggle is not None:
        from . import kaggle

        profile = "full" if args.profile == "auto" else args.profile
        try:
            resolve_profile(profile)
            parse_sizes(args.sizes)
        except (ValueError, UnknownSizeError) as err:
            parser.error(str(err))
        folder = Path(args.kaggle) if args.kaggle else OutputDirs(args.out).root / "kaggle"
        return kaggle.main(folder, profile=profile, sizes=args.sizes)

    try:
        profile = resolve_profile(args.profile)
        sizes = parse_sizes(args.sizes)
    except (ValueError, UnknownSizeError) as err:
        parser.error(str(err))
    if args.out == "drive":  # Colab: a folder on Google Drive, mounted here once for every notebook
        from .paths import google_drive_out_dir

        args.out = str(google_drive_out_dir())
    problem = out_dir_problem(args.out)
    if problem:
        parser.error(problem)
    if args.parallel is not None and args.parallel < 1:
        parser.error(f"--parallel {args.parallel}: give the number of sizes to train at once, at least 1")
    out = OutputDirs(args.out)
    jobs = plan(out, profile, sizes, force=args.force, push=args.push, extras=args.extras,
                allow_quick=args.allow_quick)
    gpus = _gpu_count()
    parallel = args.parallel or sizes_at_once(profile, gpus, environment.physical_cores())
    at_once = f", {parallel} sizes at a time" if parallel > 1 and len(sizes) > 1 else ""
    print(f"JungleGPT: profile {profile}, sizes {','.join(sizes)}, output {out.root}, "
          f"{gpus or 'no'} CUDA GPU{'s' if gpus != 1 else ''}{at_once}", flush=True)

    started = time.perf_counter()
    summary: list[tuple[str, str, float]] = []
    failed: list[tuple[str, Path, str]] = []

    def finish(job: Job, ok: bool, seconds: float, tail: str) -> None:
        status = "ok" if ok else "FAILED"
        summary.append((job.label, status, seconds, training_time(out, job) if ok else {}))
        elapsed = time.perf_counter() - started
        print(f"  {job.label:<22} {status:<7} {seconds:7.1f} s   (elapsed {elapsed:6.0f} s)", flush=True)
        if ok and job.notebook not in PER_SIZE:
            atomic_write_json(_done_marker(out, job.label), _marker_content(job, out))
        if not ok:
            failed.append((job.label, job.executed, tail))

    def skip(job: Job) -> None:
        summary.append((job.label, "skipped", 0.0, {}))
        print(f"  {job.label:<22} skipped (finished before; --force reruns it)", flush=True)

    try:
        with exclusive_use(out):
            run_in_order(jobs, out, args.force, gpus, finish, skip, failed, parallel)
    except OutInUseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nInterrupted. {resume_hint(jobs, out)}", file=sys.stderr)
        return 130

    total = time.perf_counter() - started
    print(f"\nSummary ({total:.0f} s in all):")
    for label, status, seconds, training in summary:
        timing = f" + {training['measure_s']:.0f} s timing its step" if training.get("measure_s") else ""
        beside = (f"   training {training['train_time_s']:.0f} s{timing}, of a {training['time_budget_s']:.0f} s "
                  "budget" if training.get("time_budget_s") else "")
        print(f"  {label:<22} {status:<8} {seconds:7.1f} s{beside}")
    if failed:
        print("\nFailed:", file=sys.stderr)
        for label, executed, tail in failed:
            print(f"  {label}: see the executed notebook {executed}", file=sys.stderr)
            if tail:
                print("    " + tail.replace("\n", "\n    "), file=sys.stderr)
        not_run = [job.label for job in jobs if job.label not in {entry[0] for entry in summary}]
        if not_run:
            print(f"Not run, since they need what failed: {', '.join(not_run)}.", file=sys.stderr)
        print("Fix the cause, then run the same command again: finished notebooks are skipped, and a size whose "
              "training was interrupted resumes from its last checkpoint.", file=sys.stderr)
        return 1
    entries = [{"label": lb, "status": st, "seconds": round(s, 1), **training} for lb, st, s, training in summary]
    atomic_write_json(out.executed / "run_summary.json",
                      {"profile": profile, "sizes": sizes, "seconds": total,
                       "notebooks": with_earlier_times(out, entries)})
    return 0


def with_earlier_times(out: OutputDirs, entries: list[dict]) -> list[dict]:
    """The summary's notebooks, each as the run that made it measured it: a notebook skipped now
    (finished before) keeps its entry from the last summary, marked "skipped": true, so that a resumed
    run, or one that adds --extras, does not replace what the first part measured with a 0."""
    try:
        earlier = {n["label"]: n for n in read_json(out.executed / "run_summary.json")["notebooks"]}
    except (OSError, DamagedFileError, KeyError, TypeError):
        earlier = {}
    return [{**earlier.get(e["label"], e), "skipped": True} if e["status"] == "skipped" else e for e in entries]


if __name__ == "__main__":
    sys.exit(main())
