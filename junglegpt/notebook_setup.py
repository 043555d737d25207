"""The first code cell of every notebook, kept here so that one test can check they all agree.

It has to work before `junglegpt` can be imported, so it is plain Python with no imports of ours.
In a clone, ./run_all.sh has installed the package already. Opened alone on Kaggle or Colab, the
cell installs the repository from GitHub with pip, pinning torch to the version already there so
that the preinstalled (CUDA) torch is never replaced.
"""

from . import REPO_URL

SETUP_CELL = f'''# Setup: make the helper package `junglegpt` importable.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("junglegpt") is None:
    if os.path.exists("../junglegpt/__init__.py"):  # a clone of the repository
        sys.path.insert(0, os.path.abspath(".."))
    else:  # Kaggle, Colab: install from GitHub, keeping the preinstalled torch
        import torch
        with open("torch-constraint.txt", "w") as f:
            f.write(f"torch=={{torch.__version__}}\\n")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", "torch-constraint.txt",
                        "git+{REPO_URL}"], check=True)'''
