"""`./run_all.sh --kaggle`: the sweep on a Kaggle GPU, sent with the official `kaggle` command-line tool.

It writes a folder with two parts, each ready for the CLI:

- `dataset/`: the package as a wheel, the wheels of the dependencies Kaggle's image lacks (so the
  kernel can run with the internet off), and the book texts; `dataset-metadata.json` names it
  USER/junglegpt-bundle.
- `kernel/`: a notebook that installs the package from that dataset and runs the series (the eight
  sizes, then notebooks 04, 05 and 08's dry run) in the full profile; `kernel-metadata.json` asks
  for a GPU, no internet, and the dataset attached.

With Kaggle credentials present (~/.kaggle/kaggle.json, or KAGGLE_USERNAME and KAGGLE_KEY) it sends
both; without, it stops after writing them and prints the commands. The CLI reads the credentials
itself: they are never read here beyond the user name, never printed and never passed on a command
line. `kaggle kernels output USER/junglegpt-sweep -p OUT` brings the results back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import data
from .notebook_setup import INSTALLER, SETUP_CELL
from .paths import REPO_ROOT

DATASET_SLUG = "junglegpt-bundle"
KERNEL_TITLE = "JungleGPT sweep"  # Kaggle makes the kernel's slug from its title
KERNEL_SLUG = "junglegpt-sweep"
KERNEL_FILE = "junglegpt-sweep.ipynb"
ACCELERATOR = "NvidiaTeslaT4"  # the free GPU (`kaggle kernels push --accelerator`)
PLATFORM_FILE = REPO_ROOT / "platforms" / "kaggle.txt"
USERNAME_PLACEHOLDER = "YOUR-KAGGLE-USERNAME"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{4,48}[a-z0-9]$")  # Kaggle's slugs: 6 to 50 characters


def _config_file() -> Path:
    return Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle")) / "kaggle.json"


def has_credentials() -> bool:
    return bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")) or _config_file().exists()


def username() -> str | None:
    """The Kaggle user name from the environment or kaggle.json (the key itself is not read)."""
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    try:
        return json.loads(_config_file().read_text()).get("username")
    except (OSError, ValueError):
        return None


def kaggle_versions() -> dict[str, str]:
    """What Kaggle's image ships, from platforms/kaggle.txt: {name: version}."""
    pins = {}
    for line in PLATFORM_FILE.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def missing_on_kaggle() -> list[str]:
    """Our dependencies that Kaggle's image lacks (torch aside, which it always has)."""
    import importlib.metadata

    have = kaggle_versions()
    missing = []
    for requirement in importlib.metadata.requires("junglegpt") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name not in have and name != "torch":
            missing.append(requirement.split(";")[0].strip())
    return missing


def build_wheel(dest: Path) -> Path:
    """The package as a wheel (notebooks included), built from this checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dest), str(REPO_ROOT)], check=True)
    return max(dest.glob("junglegpt-*.whl"), key=lambda p: p.stat().st_mtime)


def download_dependency_wheels(dest: Path, python_versions: tuple[str, ...] = ("3.12",)) -> list[str]:
    """Wheels of the dependencies Kaggle lacks, for Kaggle's Python (3.12), so that the kernel needs
    no internet. Returns what could not be had (the kernel then needs the internet for it)."""
    failed = []
    for requirement in missing_on_kaggle():
        for version in python_versions:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                 "--python-version", version, "--platform", "manylinux2014_x86_64", "-d", str(dest), requirement],
                capture_output=True, text=True)
            if proc.returncode:
                failed.append(f"{requirement} (Python {version})")
    return failed


def sweep_notebook(profile: str = "full", sizes: str = "all") -> dict:
    """The kernel's notebook: the setup cell (which installs the attached wheel), then the series."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# JungleGPT: the whole series on a Kaggle GPU\n\n"
            f"Written by `./run_all.sh --kaggle`. It installs `junglegpt` from the attached dataset "
            f"({DATASET_SLUG}: the package, the wheels it needs and the books, so no internet is needed), "
            f"then trains the sizes ({sizes}) in the `{profile}` profile and runs notebooks 04, 05 and 08 "
            "(a dry run) with papermill. Everything lands in /kaggle/working/junglegpt; bring it home with "
            f"`kaggle kernels output <user>/{KERNEL_SLUG} -p <folder>`."),
        nbformat.v4.new_code_cell(SETUP_CELL),
        nbformat.v4.new_code_cell(
            "from junglegpt import run_all\n\n"
            f"status = run_all.main([\"--profile\", \"{profile}\", \"--sizes\", \"{sizes}\", "
            "\"--out\", \"/kaggle/working/junglegpt\"])\n"
            "assert status == 0, \"a notebook failed: see the messages above, and junglegpt/executed/\""),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"sweep-{i}"
    return nb


class BundleFolderError(ValueError):
    """A --kaggle FOLDER that cannot hold the bundle, or holds something the bundle would replace."""


def _bundle_entry(part: str, name: str) -> bool:
    """Whether `name` in dataset/ or kernel/ is one of the things write_bundle writes there."""
    if part == "dataset":
        return name in {INSTALLER, "wheels", "books", "dataset-metadata.json"} or (
            name.startswith("junglegpt-") and name.endswith(".whl"))
    return name in {KERNEL_FILE, "kernel-metadata.json"}


def check_bundle_folder(folder: Path) -> None:
    """Refuse, before anything is built or deleted, a folder that is a file (or lies under one), and a
    dataset/ or kernel/ in it holding anything but an earlier bundle: write_bundle replaces those two
    folders whole, and `--kaggle ~` deleted ~/dataset with whatever it held."""
    for above in (folder, *folder.parents):
        if above.exists() and not above.is_dir():
            raise BundleFolderError(f"{above} is a file, not a folder: choose another --kaggle FOLDER.")
        if above.exists():
            break
    for part in ("dataset", "kernel"):
        path = folder / part
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise BundleFolderError(f"{path} is not a folder of an earlier bundle; nothing was deleted: choose "
                                    "an empty --kaggle FOLDER.")
        foreign = sorted(p.name for p in path.iterdir() if not _bundle_entry(part, p.name)) if path.is_dir() else []
        if foreign:
            raise BundleFolderError(
                f"{path} holds {', '.join(foreign[:3])}{' …' if len(foreign) > 3 else ''}, which ./run_all.sh "
                f"--kaggle did not write, and the bundle replaces that folder: nothing was deleted. Choose an "
                "empty --kaggle FOLDER (the default is OUT/kaggle).")


def write_bundle(folder: Path, user: str | None = None, profile: str = "full", sizes: str = "all",
                 python_versions: tuple[str, ...] = ("3.12",)) -> dict:
    """Write dataset/ and kernel/ under `folder`; return what was written (paths, ids, warnings)."""
    import nbformat

    user = (user or username() or USERNAME_PLACEHOLDER).lower()
    dataset_id, kernel_id = f"{user}/{DATASET_SLUG}", f"{user}/{KERNEL_SLUG}"
    dataset, kernel = folder / "dataset", folder / "kernel"
    check_bundle_folder(folder)
    for part in (dataset, kernel):
        shutil.rmtree(part, ignore_errors=True)  # an earlier bundle (check_bundle_folder said so)
        try:
            part.mkdir(parents=True)
        except OSError as err:
            raise BundleFolderError(f"cannot write {part} ({err.strerror}): choose another --kaggle FOLDER.") from None
    wheel = build_wheel(dataset)
    # What the notebooks' first cell looks for under /kaggle/input, and runs: it installs the wheel
    shutil.copyfile(REPO_ROOT / "notebooks" / INSTALLER, dataset / INSTALLER)
    not_bundled = download_dependency_wheels(dataset / "wheels", python_versions)
    books = dataset / "books"
    books.mkdir()
    for known in (data.JUNGLE_BOOK, data.SECOND_JUNGLE_BOOK, *data.KIPLING_BOOKS):
        # Found where the notebooks would find it (JUNGLE_DATA_DIR, data/raw, a download). The kernel
        # recognises each by its content, so the file is named by its title. The 23 books of
        # notebook 07 are optional: after one cannot be had, the rest are not tried.
        try:
            source = data.find_text(known, REPO_ROOT / "data" / "raw", total_timeout=20)
        except FileNotFoundError:
            if known in data.KIPLING_BOOKS:
                not_bundled.append("the 23 other Kipling books of notebook 07 (it needs the internet then)")
                break
            raise
        shutil.copyfile(source, books / f"{known.slug}.txt")
    (dataset / "dataset-metadata.json").write_text(json.dumps({
        "title": "JungleGPT package and books",
        "id": dataset_id,
        "subtitle": "The junglegpt wheel, its dependencies, and the Kipling texts",
        "licenses": [{"name": "CC0-1.0"}],
    }, indent=2) + "\n")
    nbformat.write(sweep_notebook(profile, sizes), kernel / KERNEL_FILE)
    (kernel / "kernel-metadata.json").write_text(json.dumps({
        "id": kernel_id,
        "title": KERNEL_TITLE,
        "code_file": KERNEL_FILE,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": [dataset_id],
        "competition_sources": [],
        "kernel_sources": [],
        "model_sources": [],
    }, indent=2) + "\n")
    return {"dataset": dataset, "kernel": kernel, "wheel": wheel, "dataset_id": dataset_id,
            "kernel_id": kernel_id, "not_bundled": not_bundled, "user_known": user != USERNAME_PLACEHOLDER.lower()}


def commands(bundle: dict) -> list[list[str]]:
    """The CLI commands that send the bundle (a new dataset; `datasets version` replaces an existing one)."""
    return [["kaggle", "datasets", "create", "-p", str(bundle["dataset"]), "--dir-mode", "zip"],
            ["kaggle", "kernels", "push", "-p", str(bundle["kernel"]), "--accelerator", ACCELERATOR]]


def push(bundle: dict, run=subprocess.run) -> None:
    """Send the dataset (a new version if it exists) and the kernel with the `kaggle` CLI."""
    if shutil.which("kaggle") is None:
        raise RuntimeError("the `kaggle` command is not installed: `pip install kaggle`, then run this again.")
    exists = run(["kaggle", "datasets", "status", bundle["dataset_id"]], capture_output=True, text=True).returncode == 0
    create, push_kernel = commands(bundle)
    send = (["kaggle", "datasets", "version", "-p", str(bundle["dataset"]), "-m", "update from ./run_all.sh --kaggle",
             "--dir-mode", "zip"] if exists else create)
    for cmd in (send, push_kernel):
        if run(cmd).returncode:
            raise RuntimeError(f"`{' '.join(cmd[:3])}` failed (its message is above). The folders are written; "
                               "fix the cause and run ./run_all.sh --kaggle again.")


def main(folder: Path, profile: str = "full", sizes: str = "all") -> int:
    try:
        bundle = write_bundle(Path(folder), profile=profile, sizes=sizes)
    except (BundleFolderError, FileNotFoundError) as err:  # a folder it cannot use; a book it cannot find
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Wrote {bundle['dataset']} (the wheel, {len(list((bundle['dataset'] / 'wheels').glob('*.whl')))} "
          f"dependency wheels, the books) and {bundle['kernel']} (GPU {ACCELERATOR}, internet off).")
    if bundle["not_bundled"]:
        print("Could not bundle: " + ", ".join(bundle["not_bundled"])
              + ". Turn the kernel's internet on (enable_internet in kernel-metadata.json), or run this where "
              "the package index is reachable.")
    fetch = f"kaggle kernels output {bundle['kernel_id']} -p <your out folder>"
    if not has_credentials():
        print("No Kaggle credentials here (~/.kaggle/kaggle.json, or KAGGLE_USERNAME and KAGGLE_KEY), so nothing "
              "was sent. To send it, run:")
        if not bundle["user_known"]:
            print(f"  (first replace {USERNAME_PLACEHOLDER} with your Kaggle user name in both metadata files)")
        for cmd in commands(bundle):
            print("  " + " ".join(cmd))
        print(f"When the kernel has finished, bring its results back with:\n  {fetch}")
        return 0
    push(bundle)
    print(f"Sent. Follow the run at https://www.kaggle.com/code/{bundle['kernel_id']}; when it has finished:\n"
          f"  {fetch}")
    return 0
