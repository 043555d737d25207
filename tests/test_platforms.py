"""Simulated Kaggle and Colab sessions: a notebook opened alone, in a fresh session, with the platform's
own library versions, must install our package without changing any of them, find its inputs where
the platform puts them, build what earlier notebooks would have made, and run.

Each platform is a virtual environment built once per test module from platforms/<name>.txt (the
versions its image ships; see the comments there), with this machine's CPU build of torch standing
in for the platform's (2.10.0 with CUDA). Its Python runs the notebook's kernel; papermill drives
it from outside, as Kaggle and Colab run notebooks in their own kernel. A "fresh session" is that
environment with everything a setup cell added removed again, and an empty working folder.

- Kaggle: no network (pip's index is a closed port, the Hub offline), the books attached under a
  fake /kaggle/input with other file names (the dataset of ./run_all.sh --kaggle), KAGGLE_KERNEL_RUN_TYPE
  set. 03 opened alone installs from the clone (JUNGLEGPT_PIP_SPEC) and trains; its output is then
  attached to a new session, where 05 opened alone installs from the bundle's wheel and generates.
- Colab: COLAB_RELEASE_TAG set, Colab's versions (ipywidgets 7), the package index reachable (Colab
  is online: papermill and pyppmd, which it lacks, are added), out_dir="drive" with a stand-in for
  google.colab's Drive; 03, then 05 (its widget playground built) in a new session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from junglegpt import kaggle
from junglegpt.paths import REPO_ROOT
from junglegpt.run_all import papermill_command

from .helpers import clone_of_the_working_tree

pytestmark = pytest.mark.platforms
TORCH = "torch==2.13.0"  # the local CPU build (no CUDA libraries to download: gigabytes and minutes)
# The platforms' images hold their libraries byte-compiled. This environment is installed without
# (--no-compile: torch and the rest would take minutes), so its processes must be free to keep what
# they compile: where PYTHONDONTWRITEBYTECODE is set (CI), every kernel would compile torch and
# transformers again (15 s more a kernel, measured).
COMPILING = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class SimulatedPlatform:
    """A virtual environment holding a platform's library versions, and a kernel spec that runs it."""

    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.jupyter_path = root / "jupyter"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        # torch first, then the platform's versions. torch 2.13 asks for setuptools>=77.0.3; the
        # platforms hold 75.2 with a torch that accepts it (torch 2.12 declares setuptools<82), so
        # the stand-in declares what theirs does: pip would otherwise replace the platform's
        # setuptools, or settle on a CUDA build of torch 2.12 (5 GB to download).
        self.pip_install(TORCH)
        self.declare_setuptools_as_the_platform_torch_does()
        self.pip_install("-r", str(REPO_ROOT / "platforms" / f"{name}.txt"))
        spec = self.jupyter_path / "kernels" / f"sim-{name}"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"simulated {name}", "language": "python"}))
        self.preinstalled = self.versions()

    def declare_setuptools_as_the_platform_torch_does(self) -> None:
        [metadata] = self.venv.glob("lib/python*/site-packages/torch-*.dist-info/METADATA")
        text = metadata.read_text(encoding="utf-8")
        assert "Requires-Dist: setuptools>=77.0.3\n" in text, "torch's requirements changed: update this"
        metadata.write_text(text.replace("Requires-Dist: setuptools>=77.0.3\n", "Requires-Dist: setuptools<82\n"),
                            encoding="utf-8")

    def pip_install(self, *args: str) -> None:
        # --no-compile: no byte-compiling of thousands of modules up front (Python compiles what it imports)
        proc = subprocess.run([str(self.python), "-m", "pip", "install", "-q", "--no-compile",
                               "--disable-pip-version-check", *args], capture_output=True, text=True,
                              env=COMPILING)
        assert proc.returncode == 0, f"could not build the simulated {self.name} environment:\n{proc.stderr[-3000:]}"

    def versions(self) -> dict[str, str]:
        listed = subprocess.run([str(self.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
                                capture_output=True, text=True, check=True, env=COMPILING).stdout
        return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(listed)}

    def changed(self) -> dict[str, tuple[str, str | None]]:
        """Preinstalled libraries whose version is not what the platform had: {name: (before, now)}."""
        now = self.versions()
        return {name: (v, now.get(name)) for name, v in self.preinstalled.items() if now.get(name) != v}

    def new_session(self) -> None:
        """Remove what earlier setup cells added, as a fresh session would not have it."""
        added = sorted(set(self.versions()) - set(self.preinstalled))
        if added:
            subprocess.run([str(self.python), "-m", "pip", "uninstall", "-q", "-y", *added], check=True, env=COMPILING)

    def run(self, notebook: str, work: Path, env: dict, **parameters) -> nbformat.NotebookNode:
        """Copy notebooks/<notebook>.ipynb alone into `work` and run it there in a fresh session."""
        self.new_session()
        work.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "notebooks" / f"{notebook}.ipynb", work)
        executed = work / f"{notebook}.executed.ipynb"
        environ = {k: v for k, v in COMPILING.items()
                   if not k.startswith(("JUNGLE", "KAGGLE", "COLAB", "PIP_", "VIRTUAL_ENV"))}
        environ.update(PATH=f"{self.venv / 'bin'}{os.pathsep}{environ['PATH']}", JUPYTER_PATH=str(self.jupyter_path),
                       JUPYTER_DATA_DIR=str(self.root / "jupyter-data"), **env)
        # papermill drives the platform's kernel from outside, as run_all.sh would
        cmd = papermill_command(work / f"{notebook}.ipynb", executed, {"profile": "smoke", **parameters},
                                cwd=work, kernel=f"sim-{self.name}")
        proc = subprocess.run(cmd, cwd=work, env=environ, capture_output=True, text=True, timeout=900)
        failure = f"{notebook} failed on simulated {self.name}:\n{proc.stdout[-2500:]}{proc.stderr[-4000:]}"
        assert proc.returncode == 0, failure
        return nbformat.read(executed, as_version=4)


_PLATFORMS: dict[str, SimulatedPlatform] = {}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """simulated("kaggle"): the platform's environment, built on first use and shared by the tests."""
    def get(name: str) -> SimulatedPlatform:
        if name not in _PLATFORMS:
            _PLATFORMS[name] = SimulatedPlatform(name, tmp_path_factory.mktemp(f"sim-{name}"))
        return _PLATFORMS[name]

    yield get
    # Gigabytes each: not left behind in the temp folder. Removed while the next tests run (a
    # thread Python waits for before it exits): 58,000 files took 90 s to delete here, most of it
    # waiting for the disk.
    for platform in _PLATFORMS.values():
        threading.Thread(target=shutil.rmtree, args=(platform.venv,), kwargs={"ignore_errors": True}).start()
    _PLATFORMS.clear()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return clone_of_the_working_tree(tmp_path_factory.mktemp("clone") / "junglegpt")


def printed(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
           "PIP_TIMEOUT": "2", "HF_HUB_OFFLINE": "1", "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def kaggle_session(simulated, tmp_path_factory, kaggle_bundle):
    """The Kaggle layout: /kaggle/input with the bundle of ./run_all.sh --kaggle (as a Kaggle dataset
    mounts it: its files, read-only), and an empty /kaggle/working."""
    root = tmp_path_factory.mktemp("kaggle")
    attached = root / "input" / kaggle.DATASET_SLUG
    shutil.copytree(kaggle_bundle["dataset"], attached)
    for path in sorted(attached.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    env = {"KAGGLE_KERNEL_RUN_TYPE": "Interactive", "JUNGLEGPT_KAGGLE_INPUT": str(root / "input"), **OFFLINE}
    return simulated("kaggle"), root, env


def test_kaggle_03_opened_alone_offline_installs_from_the_clone_builds_01_02_and_trains(kaggle_session, clone):
    platform, root, env = kaggle_session
    work = root / "working-03"
    session = {**env, "JUNGLEGPT_KAGGLE_WORKING": str(work), "JUNGLEGPT_PIP_SPEC": str(clone)}
    nb = platform.run("03_train", work, session, model_size="1M")
    out = work / "junglegpt"  # the default out_dir on Kaggle: /kaggle/working/junglegpt
    assert (out / "models" / "1M" / "metrics.json").exists() and (out / "models" / "1M" / "model.safetensors").exists()
    for name in ("01_data_exploration", "02_tokenizer"):  # made first, and said so
        assert (out / "executed" / f"{name}.ipynb").exists()
        assert f"{name} has not run in {out}: running it now" in printed(nb)
    assert f"Installing junglegpt from {clone}" in printed(nb)
    assert platform.changed() == {}
    added = set(platform.versions()) - set(platform.preinstalled)
    assert added == {"junglegpt", "pyppmd"}  # pyppmd from the attached wheels: there is no network


def test_kaggle_05_opened_alone_with_03s_output_attached_installs_the_bundled_wheel(kaggle_session, clone):
    platform, root, env = kaggle_session
    earlier = root / "working-03" / "junglegpt"
    if not (earlier / "models" / "1M" / "metrics.json").exists():
        pytest.skip("needs the model of the test before")
    attached = root / "input" / "junglegpt-03-output" / "junglegpt"  # 03's output, attached as data
    shutil.copytree(earlier, attached, ignore=shutil.ignore_patterns("executed", "checkpoint*"))
    work = root / "working-05"
    nb = platform.run("05_generate", work, {**env, "JUNGLEGPT_KAGGLE_WORKING": str(work)}, interactive=False)
    text = printed(nb)
    assert "Installing junglegpt from " + str(root / "input" / kaggle.DATASET_SLUG) in text  # the wheel, found by name
    assert "linked models/1M ->" in text  # 03's model, linked in from the input
    assert json.loads((work / "junglegpt" / "generations.json").read_text())
    assert platform.changed() == {}


def test_colab_03_then_05_each_in_a_fresh_session_with_everything_on_drive(simulated, tmp_path, clone, shared_data):
    platform = simulated("colab")
    fake_colab = tmp_path / "fake-google-colab"  # google.colab.drive.mount, standing in for Colab's
    (fake_colab / "google" / "colab").mkdir(parents=True)
    (fake_colab / "google" / "colab" / "__init__.py").write_text(
        "import os, types\n"
        "drive = types.SimpleNamespace(mount=lambda path: os.makedirs(os.path.join(path, 'MyDrive'), exist_ok=True))\n")
    env = {"COLAB_RELEASE_TAG": "release-colab-sim", "PYTHONPATH": str(fake_colab),
           "JUNGLEGPT_DRIVE_MOUNT": str(tmp_path / "drive"), "JUNGLEGPT_COLAB_CONTENT": str(tmp_path / "content"),
           "JUNGLEGPT_PIP_SPEC": str(clone), "JUNGLE_DATA_DIR": str(shared_data), "HF_HUB_OFFLINE": "1",
           "JUNGLEGPT_KAGGLE_INPUT": str(tmp_path / "no-kaggle-input")}
    platform.run("03_train", tmp_path / "content", env, out_dir="drive", model_size="1M")
    out = tmp_path / "drive" / "MyDrive" / "junglegpt"
    assert (out / "models" / "1M" / "metrics.json").exists()
    assert platform.changed() == {}
    added = set(platform.versions()) - set(platform.preinstalled)
    assert {"junglegpt", "pyppmd", "papermill"} <= added  # what Colab lacks, added; nothing replaced
    nb = platform.run("05_generate", tmp_path / "content-2", env, out_dir="drive", interactive=True)
    assert json.loads((out / "generations.json").read_text())
    widgets = [o for c in nb.cells for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the playground was not built with Colab's ipywidgets"
    assert platform.changed() == {}
