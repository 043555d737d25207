"""The first code cell of every notebook, kept here so that one test can check they all agree.

The cell is short: where `junglegpt` cannot be imported yet, it finds the installer
`notebooks/setup_junglegpt.py` (in this clone, in the one JUNGLEGPT_PIP_SPEC names, in a dataset
attached on Kaggle, or else on GitHub) and runs it. The installer's docstring says what it does;
tests/test_setup_cell.py runs both.
"""

from . import REPO_URL

INSTALLER = "setup_junglegpt.py"  # in notebooks/, and at the top of the Kaggle bundle's dataset
INSTALLER_URL = f"{REPO_URL}/raw/main/notebooks/{INSTALLER}"  # GitHub redirects to the file

# Installed already (./run_all.sh, or an earlier notebook in this session): nothing to do, and
# nothing to download. Else the installer, from the first place that has it.
SETUP_CELL = f'''#@title Setup: make `junglegpt` importable (on Kaggle and Colab, pip installs it)
import glob, importlib.util, os, runpy, urllib.request  # noqa: E401, I001
where = [os.getenv("JUNGLEGPT_PIP_SPEC", "..") + "/notebooks",  # this clone
         os.getenv("JUNGLEGPT_KAGGLE_INPUT", "/kaggle/input") + "/**"]  # on Kaggle
found = [f for w in where for f in glob.glob(w + "/{INSTALLER}", recursive=True)]
url = "{INSTALLER_URL}"
if importlib.util.find_spec("junglegpt") is None:  # else installed already
    runpy.run_path((found or [urllib.request.urlretrieve(url)[0]])[0])'''


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
