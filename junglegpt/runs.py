"""Running notebook 03's training loop from notebooks 06 and 07, so that there is one loop, not three.

Notebook 06 fine-tunes a pretrained GPT-2 and notebook 07 trains on more text; both do it by
executing 03_train.ipynb with papermill and other parameters (`init_from`, `train_file`,
`run_name`), exactly as run_all.sh executes it for the eight sizes. The executed copy is kept in
OUT/executed/ for reading, and the result is the metrics.json it wrote. A notebook opened alone
(Kaggle, Colab) builds what it lacks the same way: 03 runs 01 and 02 (`ensure_split_and_tokenizer`,
called by `training.prepare_run`), and 04, 05 and 08 run 03 (`ensure_trained`).
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from . import REPO_URL
from .io import read_json
from .paths import NOTEBOOKS_DIR, OutputDirs


def notebook_file(name: str) -> Path:
    """notebooks/NAME.ipynb: a clone's, or the copy inside the installed package (Kaggle, Colab)."""
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall junglegpt (its notebooks travel inside the package), "
                                f"or clone {REPO_URL} and run this notebook from there.")
    return path


def saves_after_every_cell(parameters: dict) -> bool:
    """Whether papermill rewrites a notebook's executed copy after every cell, so that a long run can
    be followed there and a killed one read up to where it died. Not in the smoke profile, which
    checks the plumbing in seconds: there 03's 190 saves cost a tenth of its CPU time (measured).
    The copy is still written when the notebook ends, and when a cell fails."""
    return parameters.get("profile") != "smoke"


def execute(out: OutputDirs, name: str, label: str, parameters: dict) -> Path:
    """Run notebook `name` with papermill and `parameters` (out_dir added); its executed copy is
    OUT/executed/<label>.ipynb. A failure says which cell to look at."""
    import papermill

    source = notebook_file(name)
    executed = out.executed / f"{label}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(source), str(executed), parameters={"out_dir": str(out.root), **parameters},
                                   cwd=str(source.parent), kernel_name="python3", progress_bar=False,
                                   request_save_on_cell_execute=saves_after_every_cell(parameters))
    except papermill.PapermillExecutionError as err:
        raise RuntimeError(
            f"{name} failed ({err.ename}: {err.evalue}). Open {executed} to see the cell that failed; "
            "rerunning picks up what finished."
        ) from None
    return executed


def run_training(out: OutputDirs, run_name: str, **parameters) -> dict:
    """Execute notebook 03 with `parameters`, saving to OUT/models/<run_name>; return its metrics.json.

    The executed notebook is OUT/executed/03_train_<run_name with "/" as "_">.ipynb. Notebook 03
    skips a run that finished before with the same settings, and resumes one that was interrupted.
    """
    model_dir = out.model(run_name)  # a name that leads out of OUT/models is refused before 03 starts
    label = f"03_train_{run_name.replace('/', '_')}"
    print(f"training {run_name}: notebook 03 with {parameters}; its executed copy: {out.executed / label}.ipynb")
    execute(out, "03_train", label, {"run_name": run_name, **parameters})
    return read_json(model_dir / "metrics.json")


def ensure_split_and_tokenizer(out: OutputDirs, profile: str, tokenizer: bool = True) -> None:
    """What notebook 03 needs from 01 (the split) and 02 (the tokenizer), made if it is missing.

    Opened alone in a fresh Kaggle or Colab session, 03 finds neither: then it runs notebooks 01
    and 02 headlessly, as run_all.sh would (their executed copies go to OUT/executed/). Nothing
    happens where they are there already.
    """
    never_ran = "has not run in {root}: running it now (under a minute), as run_all.sh would"
    needed = {}  # notebook: why it runs
    if not (out.train_txt.exists() and out.val_txt.exists()):
        needed["01_data_exploration"] = never_ran
    if tokenizer and not (out.tokenizer / "tokenizer.json").exists():
        needed["02_tokenizer"] = never_ran
    elif tokenizer and (problem := tokenizer_problem(out.tokenizer)):
        # a tokenizer.json cut short is there, but no better than none: 02 makes it again
        needed["02_tokenizer"] = f"runs again (under a minute), since {problem}"
    for name, why in needed.items():
        print(f"{name} {why.format(root=out.root)}")
        execute(out, name, name, {"profile": profile})


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' loading reports and warnings silenced: the caller says what went wrong in one line."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # in a notebook its bar is a widget, which no redirect catches
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def tokenizer_problem(folder: Path) -> str | None:
    """Why the tokenizer notebook 02 saved in `folder` cannot be used, in words naming the folder; None
    if it loads. A tokenizer.json cut short (a full disk, an interrupted copy) fails with a bare
    JSONDecodeError that names no file: that is not a finished notebook 02."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "tokenizer.json").exists():
        return f"{folder} holds no tokenizer (no tokenizer.json)"
    try:
        with _quiet_transformers():
            AutoTokenizer.from_pretrained(folder)
    except Exception as err:  # any damage: a truncated or edited file, a missing one
        return f"the tokenizer in {folder} cannot be loaded ({type(err).__name__}: {_first_line(err)})"
    return None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0][:160]


def model_problem(folder: Path) -> str | None:
    """Why the model saved in `folder` cannot be used, in words; None if it loads: every weight
    present with the shape its config.json says, and its tokenizer. A model folder that exists but
    does not load (a file cut short by a full disk or an interrupted copy, a weight file from
    another size, a tokenizer file deleted) is not a finished model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").exists():
        return f"{folder} holds no model (no config.json)"
    try:
        with _quiet_transformers():  # the loading report would print a table; we say it in one line
            model, info = AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
            tokenizer = AutoTokenizer.from_pretrained(folder)
    except Exception as err:  # any damage: a truncated file, wrong shapes, a missing file
        return f"{folder} cannot be loaded ({type(err).__name__}: {_first_line(err)})"
    wrong = sorted(info["missing_keys"]) + sorted(info["unexpected_keys"]) + sorted(info["mismatched_keys"])
    if wrong:
        return f"{folder} does not match its config.json ({len(wrong)} weights missing or extra, e.g. {wrong[0]})"
    if len(tokenizer) > model.config.vocab_size:  # its ids past the model's table: IndexError on use
        return (f"{folder} holds a tokenizer of {len(tokenizer):,} tokens for a model of {model.config.vocab_size:,} "
                "(a tokenizer from another run)")
    return None


# The numbers of a size's metrics.json that notebook 04 reads and compares: without them, finite,
# the size is not finished (a run that diverged, or a file edited by hand).
REQUIRED_METRICS = ("n_params", "best_step", "steps_done", "best_val_loss", "best_val_bpb", "train_loss_at_best",
                    "train_bpb_at_best")


def metrics_problem(metrics: dict) -> str | None:
    """Why a size's metrics.json does not describe a finished run, in words; None if it does."""
    import math

    wrong = [key for key in REQUIRED_METRICS
             if not (isinstance(metrics.get(key), int | float) and not isinstance(metrics.get(key), bool)
                     and math.isfinite(metrics[key]))]
    if wrong:
        shown = ", ".join(f"{key}={metrics[key]!r}" if key in metrics else f"{key} missing" for key in wrong)
        return f"its metrics.json has no finite {', '.join(wrong)} ({shown})"
    return None


def check_models_match_logs(rescored, logged, rtol: float = 1e-3) -> None:
    """Notebook 04's check that each saved model scores what its training log says (validation bits
    per byte, by size: dicts or pandas Series), as numpy's allclose would; else a RuntimeError that
    names each size that disagrees and how to retrain it."""
    import math

    rescored, logged = dict(rescored), dict(logged)
    wrong = []
    for size, score in rescored.items():
        log = logged.get(size)
        numbers = [x for x in (score, log) if isinstance(x, int | float) and math.isfinite(x)]
        if len(numbers) < 2 or abs(score - log) > 1e-8 + rtol * abs(log):
            wrong.append(f"{size}: the saved model scores {score} bits per byte, its metrics.json logged {log}")
    if wrong:
        sizes = ",".join(line.split(":")[0] for line in wrong)
        raise RuntimeError(
            "a saved model disagrees with its training log (its folder was damaged, replaced or edited):\n  "
            + "\n  ".join(wrong) + f"\nRetrain it: delete its metrics.json and run ./run_all.sh --sizes {sizes} "
            f"(or 03_train.ipynb with model_size=\"{wrong[0].split(':')[0]}\" and force=True), then run this "
            "notebook again.")


def finished_before(model_dir: Path, signature: dict, force: bool = False) -> tuple[bool, str]:
    """Whether notebook 03 can skip this run: (True, why) if `model_dir` holds a model trained with
    this `signature` that loads; else (False, why it must train), e.g. "force=True"."""
    from .io import DamagedFileError

    metrics_path = Path(model_dir) / "metrics.json"
    if force:
        return False, "force=True"
    if not metrics_path.exists():
        return False, "it has not finished before"
    try:
        saved = read_json(metrics_path)
    except DamagedFileError:
        return False, f"{metrics_path} is damaged"
    problem = metrics_problem(saved)
    if problem:
        return False, f"{problem}: the run did not finish properly"
    changed = [key for key in signature if saved.get(key) != signature[key]]
    if changed:
        return False, f"it was trained with other settings or inputs ({', '.join(changed)} differ)"
    problem = model_problem(model_dir)
    if problem:
        return False, f"its saved model is damaged: {problem}"
    return True, f"it finished before with these settings ({metrics_path})"


def trained_sizes(out: OutputDirs) -> list[str]:
    """The sizes with a trained model in OUT/models (those attached on Kaggle are linked in there)."""
    from .sizes import SIZES

    return [name for name in SIZES if (out.model(name) / "metrics.json").exists()]


def ensure_trained(out: OutputDirs, profile: str, train_if_none: str = "1M") -> list[str]:
    """The trained sizes; where there is none (a notebook opened alone), train `train_if_none` first.

    Notebooks 04, 05 and 08 call this. With no trained size in OUT/models (nor attached on Kaggle),
    it says so, prints how long training will take on this machine, and runs notebook 03 for each
    size in `train_if_none` ("1M", "1M,3M", "all") in `profile`; with train_if_none="" it stops
    with a message instead.
    """
    from .environment import describe_hardware
    from .sizes import parse_sizes
    from .training import estimate_seconds

    have = trained_sizes(out)
    damaged = {size: problem for size in have if (problem := model_problem(out.model(size)))}
    if damaged:
        sizes = ",".join(damaged)
        raise RuntimeError("a trained model cannot be used:\n  " + "\n  ".join(damaged.values()) + "\n"
                           f"Retrain it: ./run_all.sh --sizes {sizes} (a size that does not load is retrained), "
                           f"or run 03_train.ipynb with model_size=\"{next(iter(damaged))}\".")
    if have:
        return have
    if not train_if_none:
        raise FileNotFoundError(f"no trained model in {out.models}: run 03_train.ipynb first (./run_all.sh trains all "
                                "eight), attach an earlier run's output on Kaggle, or set train_if_none='1M'.")
    sizes = parse_sizes(train_if_none)
    estimates = {size: estimate_seconds(size, profile) for size in sizes}
    total = sum(seconds for seconds, _ in estimates.values())
    print(f"No trained model in {out.models}. Training {', '.join(sizes)} now with notebook 03 in the {profile} "
          f"profile, which will take about {total / 60:.0f} min on this machine ({describe_hardware()}):")
    for size, (seconds, how) in estimates.items():
        print(f"  {size}: about {seconds / 60:.1f} min ({how})")
    started = time.perf_counter()
    for size in sizes:
        execute(out, "03_train", f"03_train_{size}", {"profile": profile, "model_size": size})
    print(f"trained in {(time.perf_counter() - started) / 60:.1f} min")
    return trained_sizes(out)
