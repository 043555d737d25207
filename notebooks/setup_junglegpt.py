"""Make `junglegpt` importable: every notebook's first cell finds this file and runs it.

It runs before `junglegpt` can be imported: plain Python, no imports of ours. In a
clone, ./run_all.sh has installed the package already (or this puts the clone on the
path). Opened alone on Kaggle or Colab, it installs the package with pip from the first
of:

- the JUNGLEGPT_PIP_SPEC environment variable (any pip requirement: a git URL, a
  folder, a wheel);
- a copy attached under Kaggle's input folder (a wheel named junglegpt-*.whl, or a
  source tree);
- the repository on GitHub.

Wheels attached anywhere under Kaggle's input are offered to pip, which tries them alone
first (Kaggle with the internet off). Every library already installed keeps its version
(a pip constraint for each), so the platform's torch, transformers and the rest are
never replaced and no restart is needed: pip only adds what is missing.
"""

import glob
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

REPO_URL = "https://github.com/junglegpt/junglegpt"  # = junglegpt.REPO_URL (tested)


def pip_source(attached: str, attached_wheels: list[str]) -> str:
    """What pip installs: JUNGLEGPT_PIP_SPEC, a copy attached on Kaggle, or GitHub."""
    wheels = [p for p in attached_wheels
              if os.path.basename(p).startswith("junglegpt-")]
    tomls = glob.glob(f"{attached}/**/pyproject.toml", recursive=True)
    trees = [os.path.dirname(p) for p in sorted(tomls) if os.path.exists(
        os.path.join(os.path.dirname(p), "junglegpt", "__init__.py"))]
    github = f"git+{REPO_URL}"
    source = os.getenv("JUNGLEGPT_PIP_SPEC") or (wheels + trees + [github])[0]
    is_path = os.sep in source or source.endswith(".whl")
    if "://" not in source and is_path and not os.path.exists(source):
        raise FileNotFoundError(f"JUNGLEGPT_PIP_SPEC is {source!r}, which does not "
                                "exist: give a clone, a wheel, a URL")
    if source in trees:  # Kaggle's input is read-only, and pip builds inside a tree
        return shutil.copytree(source, os.path.join(tempfile.mkdtemp(), "junglegpt"))
    return source


def keep_installed_versions() -> str:
    """A pip constraints file: every installed library at its version."""
    # Reversed: where a name is installed twice, the first on the path wins
    installed = {d.metadata["Name"].lower(): d.version
                 for d in reversed(list(importlib.metadata.distributions()))
                 if d.metadata["Name"]}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as keep:
        keep.writelines(f"{name}=={version}\n" for name, version in installed.items())
    return keep.name


def install(source: str, attached_wheels: list[str]) -> None:
    keep = keep_installed_versions()
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", keep]
    if importlib.util.find_spec("setuptools"):  # then pip can build offline
        pip.append("--no-build-isolation")
    # The wheels of what Kaggle lacks, attached beside ours: tried alone first (offline)
    folders = sorted({os.path.dirname(p) for p in attached_wheels})
    links = [arg for folder in folders for arg in ("--find-links", folder)]
    print(f"Installing junglegpt from {source} (installed libraries keep versions)")
    offline = bool(links) and subprocess.run(
        [*pip, "--no-index", *links, source]).returncode == 0
    if not offline and subprocess.run([*pip, *links, source]).returncode != 0:
        raise RuntimeError(
            "pip could not install junglegpt (see above). Kaggle, internet off: attach "
            "the dataset that ./run_all.sh --kaggle writes; else turn the internet on, "
            "or set JUNGLEGPT_PIP_SPEC.")


def main() -> None:
    if importlib.util.find_spec("junglegpt") is not None:
        return  # installed already (./run_all.sh does it)
    if os.path.exists("../junglegpt/__init__.py"):  # a notebook in a clone
        sys.path.insert(0, os.path.abspath(".."))
        return
    attached = os.environ.get("JUNGLEGPT_KAGGLE_INPUT", "/kaggle/input")
    # Ours, and the wheels of what Kaggle lacks: one walk of the input for both
    wheels = sorted(glob.glob(f"{attached}/**/*.whl", recursive=True))
    install(pip_source(attached, wheels), wheels)


if __name__ in ("__main__", "<run_path>"):  # run as a script, or by runpy.run_path
    main()
