"""The first code cell of every notebook, kept here so that one test can check they all agree.

It has to work before `junglegpt` can be imported, so it is plain Python with no imports of ours.
In a clone, ./run_all.sh has installed the package already (or the cell puts the clone on the
path). Opened alone on Kaggle or Colab, the cell installs the package with pip from the first of:
the JUNGLEGPT_PIP_SPEC environment variable (any pip requirement: a git URL, a folder, a wheel); a
copy attached under Kaggle's input folder (a wheel named junglegpt-*.whl, or a source tree); the
repository's address (`junglegpt.REPO_URL`). Wheels attached anywhere under Kaggle's input are
offered to pip, which tries them alone first (Kaggle with the internet off). Every
library already installed keeps its version (a pip constraint for each), so the platform's torch,
transformers and the rest are never replaced, and no restart is needed; pip only adds what is
missing.
"""

from . import REPO_URL

SETUP_CELL = f'''#@title Setup: make `junglegpt` importable (on Kaggle and Colab, install it with pip)
import glob
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

missing = importlib.util.find_spec("junglegpt") is None
if missing and os.path.exists("../junglegpt/__init__.py"):  # a clone
    sys.path.insert(0, os.path.abspath(".."))
elif missing:  # from JUNGLEGPT_PIP_SPEC, a copy attached on Kaggle, or GitHub
    attached = os.environ.get("JUNGLEGPT_KAGGLE_INPUT", "/kaggle/input")
    # ours, and the wheels of what Kaggle lacks
    attached_wheels = sorted(glob.glob(f"{{attached}}/**/*.whl", recursive=True))
    wheels = [p for p in attached_wheels
              if os.path.basename(p).startswith("junglegpt-")]
    tomls = sorted(glob.glob(f"{{attached}}/**/pyproject.toml", recursive=True))
    trees = [os.path.dirname(p) for p in tomls if os.path.exists(
        os.path.join(os.path.dirname(p), "junglegpt", "__init__.py"))]
    fallback = "git+{REPO_URL}"
    source = os.getenv("JUNGLEGPT_PIP_SPEC") or (wheels + trees + [fallback])[0]
    is_path = os.sep in source or source.endswith(".whl")
    if "://" not in source and is_path and not os.path.exists(source):
        raise FileNotFoundError(f"JUNGLEGPT_PIP_SPEC is {{source!r}}, which does not "
                                "exist: give a clone, a wheel, a URL")
    if source in trees:  # Kaggle's input is read-only; pip builds inside a tree
        source = shutil.copytree(source, os.path.join(tempfile.mkdtemp(), "junglegpt"))
    # Every installed library keeps its version. Reversed: the first of a name wins.
    installed = {{d.metadata["Name"].lower(): d.version
                 for d in reversed(list(importlib.metadata.distributions()))
                 if d.metadata["Name"]}}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
        keep.writelines(f"{{name}}=={{version}}\\n" for name, version in installed.items())
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", keep.name]
    if importlib.util.find_spec("setuptools"):  # then pip can build offline
        pip.append("--no-build-isolation")
    folders = sorted({{os.path.dirname(p) for p in attached_wheels}})
    links = [arg for folder in folders for arg in ("--find-links", folder)]
    print(f"Installing junglegpt from {{source}} (installed libraries keep versions)")
    offline = bool(links) and subprocess.run(
        [*pip, "--no-index", *links, source]).returncode == 0
    if not offline and subprocess.run([*pip, *links, source]).returncode != 0:
        raise RuntimeError(
            "pip could not install junglegpt (see above). Kaggle, internet off: attach "
            "the dataset that ./run_all.sh --kaggle writes; else turn the internet on, "
            "or set JUNGLEGPT_PIP_SPEC.")'''


def open_in_links(notebook: str, branch: str = "main") -> dict[str, str]:
    """Links that open notebooks/<notebook>.ipynb of REPO_URL on Colab and on Kaggle (the README's badges)."""
    path = REPO_URL.removeprefix("https://github.com/")
    return {
        "Colab": f"https://colab.research.google.com/github/{path}/blob/{branch}/notebooks/{notebook}.ipynb",
        "Kaggle": f"https://kaggle.com/kernels/welcome?src={REPO_URL}/blob/{branch}/notebooks/{notebook}.ipynb",
    }


BADGES = {"Colab": "https://colab.research.google.com/assets/colab-badge.svg",
          "Kaggle": "https://kaggle.com/static/images/open-in-kaggle.svg"}


def open_in_badges(notebook: str, branch: str = "main") -> str:
    """The README's "Open in Colab" and "Open in Kaggle" badges for one notebook, as Markdown."""
    return " ".join(f"[![Open in {platform}]({BADGES[platform]})]({link})"
                    for platform, link in open_in_links(notebook, branch).items())
