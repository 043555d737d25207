"""Where things live: the repository, and the folders a run writes under its `out_dir`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# A clone's notebooks/; in an installed copy (a wheel, on Kaggle or Colab), the copy inside the package.
NOTEBOOKS_DIR = next((d for d in (REPO_ROOT / "notebooks", Path(__file__).resolve().parent / "notebooks")
                      if (d / "03_train.ipynb").exists()), REPO_ROOT / "notebooks")


def run_name_problem(run_name) -> str | None:
    """Why `run_name` cannot name a model folder inside OUT/models, in one line; None if it can."""
    allowed = ('a run name is a folder inside OUT/models: a size ("15M") or a relative path of plain '
               'names ("finetuned/gpt2", "more-data/15M"), with no "..", ".", empty part or leading "/"')
    if not isinstance(run_name, str):
        return f"run_name={run_name!r}: {allowed}"
    parts = run_name.replace("\\", "/").split("/")
    if any(part in ("", ".", "..") for part in parts) or Path(run_name).is_absolute():
        return f"run_name={run_name!r}: {allowed}"
    return None


@dataclass(frozen=True)
class OutputDirs:
    """The layout of a run's output folder (`out_dir`, the repository root by default)."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw(self) -> Path:
        """Downloaded book texts (never committed)."""
        return self.data / "raw"

    @property
    def train_txt(self) -> Path:
        return self.data / "train.txt"

    @property
    def val_txt(self) -> Path:
        return self.data / "val.txt"

    @property
    def dataset(self) -> Path:
        return self.data / "jungle_book_split"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, run_name: str) -> Path:
        """OUT/models/<run_name>: a size ("15M") or a folder under models ("finetuned/gpt2",
        "more-data/15M"). Every model path goes through here, so a name that would lead out of
        OUT/models (an absolute path, "..") is refused here, before anything is written."""
        problem = run_name_problem(run_name)
        if problem:
            raise ValueError(problem)
        return self.models / run_name

    @property
    def executed(self) -> Path:
        return self.root / "executed"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    def make(self) -> OutputDirs:
        for folder in (self.data, self.figures):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def require(self, path: Path, made_by: str) -> Path:
        """Return `path`, or stop with a message naming the notebook that creates it."""
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist yet. Run {made_by} first with the same out_dir "
                f"({self.root}), or run ./run_all.sh, which runs the notebooks in order."
            )
        return path


# out_dir="drive" on Colab: everything goes to Google Drive, so it outlives the session and the
# next notebook, opened in a new session, finds it. Tests move the mount point with the variable.
DRIVE_MOUNT_ENV = "JUNGLEGPT_DRIVE_MOUNT"
DRIVE_MOUNT = "/content/drive"


def google_drive_out_dir() -> Path:
    """Mount Google Drive (Colab asks for permission the first time) and return MyDrive/junglegpt.

    If Drive cannot be mounted (permission refused, a run with nobody to ask), say so and use
    /content/junglegpt, which lasts as long as the session.
    """
    mount = os.environ.get(DRIVE_MOUNT_ENV, DRIVE_MOUNT)
    try:
        from google.colab import drive
    except ImportError:
        raise ValueError('out_dir="drive" works on Google Colab only: elsewhere, give a folder') from None
    try:
        drive.mount(mount)
    except Exception as err:  # Colab raises plain exceptions here (e.g. "mount failed")
        fallback = Path(os.environ.get(COLAB_CONTENT_ENV, COLAB_CONTENT)) / "junglegpt"
        print(f"Google Drive could not be mounted ({type(err).__name__}: {str(err)[:120]}). Writing to {fallback} "
              "instead: it is lost when the session ends, so download what you want to keep, or run this cell "
              "again and allow access to Drive.")
        return fallback
    return Path(mount) / "MyDrive" / "junglegpt"


# Kaggle mounts attached datasets, and the outputs of earlier notebooks attached as data, read-only
# under /kaggle/input, and keeps what a notebook writes under /kaggle/working; Colab's writable
# folder is /content. These are the defaults; tests (which simulate the platforms) move them with
# the environment variables.
KAGGLE_INPUT_ENV = "JUNGLEGPT_KAGGLE_INPUT"
KAGGLE_INPUT = "/kaggle/input"
KAGGLE_WORKING_ENV = "JUNGLEGPT_KAGGLE_WORKING"
KAGGLE_WORKING = "/kaggle/working"
COLAB_CONTENT_ENV = "JUNGLEGPT_COLAB_CONTENT"
COLAB_CONTENT = "/content"


def kaggle_input_root() -> Path:
    return Path(os.environ.get(KAGGLE_INPUT_ENV, KAGGLE_INPUT))


def link_attached_outputs(out: OutputDirs) -> list[str]:
    """Link what earlier runs left under Kaggle's input folder into `out`, where `out` lacks it.

    On Kaggle each notebook runs in its own session; attach an earlier notebook's output as data,
    and its split (data/train.txt, val.txt), tokenizer/ and models/<size>/ are found here as if
    that notebook had run in this session. They are read-only inputs: a notebook that remakes one
    (01's split, 02's tokenizer, 03's size) replaces the link with its own files
    (`io.atomic_directory`, `replace_link`), never writing through it. Returns what was linked.
    """
    root, linked = kaggle_input_root(), []
    if not root.is_dir():
        return linked
    for train in sorted(root.rglob("data/train.txt")):  # each an earlier run's output folder
        earlier = OutputDirs(train.parent.parent)
        wanted = [(earlier.train_txt, out.train_txt), (earlier.val_txt, out.val_txt),
                  (earlier.tokenizer, out.tokenizer)]
        wanted += [(m.parent, out.model(m.parent.name)) for m in sorted(earlier.models.glob("*/metrics.json"))]
        for source, dest in wanted:
            if source.exists() and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(source, target_is_directory=source.is_dir())
                linked.append(str(dest.relative_to(out.root)))
                print(f"linked {dest.relative_to(out.root)} -> {source} (an earlier run, attached as data; "
                      "read only)")
    return linked


def replace_link(path: Path, why: str) -> bool:
    """If `path` is a link to an attached run's folder, remove the link (never what it points to), say
    so and why, and return True: the notebook then makes its own `path` instead of writing through it."""
    path = Path(path)
    if not path.is_symlink():
        return False
    print(f"{path} was linked from {os.readlink(path)}; {why}: making a new one here, the attached copy is left "
          "as it is")
    path.unlink()
    return True


def resolve_out_dir(out_dir: str | Path | None = None) -> OutputDirs:
    """The output folder a notebook writes to.

    An explicit `out_dir` wins; "drive" (on Colab) is a folder on your Google Drive. Otherwise (""
    or "auto"): the repository root when running from a clone, /kaggle/working/junglegpt on Kaggle,
    /content/junglegpt on Colab, else ./junglegpt-out. On Kaggle with the default folder (only
    there), what earlier notebooks left in attached data is linked in (`link_attached_outputs`).
    """
    from .environment import on_colab, on_kaggle

    default = str(out_dir or "auto") == "auto"
    kaggle_default = OutputDirs(Path(os.environ.get(KAGGLE_WORKING_ENV, KAGGLE_WORKING)) / "junglegpt")
    if str(out_dir) == "drive":
        out = OutputDirs(google_drive_out_dir())
    elif not default:
        out = OutputDirs(out_dir)
    elif (REPO_ROOT / "pyproject.toml").exists() and NOTEBOOKS_DIR.is_dir():
        out = OutputDirs(REPO_ROOT)
    elif on_kaggle():
        out = kaggle_default
    elif on_colab():
        out = OutputDirs(Path(os.environ.get(COLAB_CONTENT_ENV, COLAB_CONTENT)) / "junglegpt")
    else:
        out = OutputDirs(Path.cwd() / "junglegpt-out")
    out.make()
    if on_kaggle() and (default or out == kaggle_default):  # earlier notebooks' output, attached as data
        link_attached_outputs(out)
    return out
