# Sourced by run_all.sh and run_tests.sh: find or make the Python environment, install the project
# into it once (again only when pyproject.toml changes), and set $PYTHON.
#
# - On Kaggle and Colab: the system Python, whose preinstalled torch is kept (a pip constraint pins
#   it to the installed version, so nothing can replace it).
# - Elsewhere: a virtual environment in .venv (JUNGLE_VENV overrides), made with Python 3.11 where
#   it exists. torch==2.13.0 is installed first (the `torch-pin` extra).

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras="dev,local"

if [ -n "${KAGGLE_KERNEL_RUN_TYPE:-}" ] || [ -n "${COLAB_RELEASE_TAG:-}" ]; then
  PYTHON=$(command -v python3)
  constraint=$(mktemp)
  "$PYTHON" -c 'import torch; print(f"torch=={torch.__version__}")' >"$constraint"
  pip_args=(-c "$constraint")
else
  venv=${JUNGLE_VENV:-$repo_root/.venv}
  if [ ! -x "$venv/bin/python" ]; then
    base=$(command -v python3.11 || command -v python3) || { echo "error: no python3 found; install Python 3.11" >&2; exit 1; }
    if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "error: $base is Python $("$base" -V 2>&1 | cut -d' ' -f2); JungleGPT needs Python 3.11 or newer." >&2
      exit 1
    fi
    echo "Creating a virtual environment in $venv with $("$base" -V 2>&1) ..."
    "$base" -m venv "$venv" || { echo "error: could not create $venv (is the venv module installed?)" >&2; exit 1; }
  fi
  PYTHON=$venv/bin/python
  extras="dev,local,torch-pin"
  pip_args=()
fi

stamp="$("$PYTHON" -c 'import sys; print(sys.prefix)')/.junglegpt-installed"
want="$(cat "$repo_root/pyproject.toml" | sha256sum | cut -d' ' -f1) $extras $repo_root"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing JungleGPT and its dependencies (once; a few minutes) ..."
  # --no-compile: Python compiles a module when it is first imported, instead of every module of
  # torch and the rest up front
  "$PYTHON" -m pip install --quiet --no-compile --disable-pip-version-check "${pip_args[@]}" -e "$repo_root[$extras]" \
    || { echo "error: pip install failed (see above). Check your internet connection or disk space, then run again." >&2; exit 1; }
  echo "$want" >"$stamp"
fi
export PYTHON
