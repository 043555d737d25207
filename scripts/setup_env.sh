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
  venv=""
  compile_args=()  # pip compiles what it adds (a few packages: the platform's are compiled already)
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
  compile_args=(--no-compile)  # compiled below, all at once
fi

stamp="$("$PYTHON" -c 'import sys; print(sys.prefix)')/.junglegpt-installed"
want="$(cat "$repo_root/pyproject.toml" | sha256sum | cut -d' ' -f1) $extras $repo_root"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing JungleGPT and its dependencies (once; a few minutes) ..."
  "$PYTHON" -m pip install --quiet "${compile_args[@]}" --disable-pip-version-check "${pip_args[@]}" -e "$repo_root[$extras]" \
    || { echo "error: pip install failed (see above). Check your internet connection or disk space, then run again." >&2; exit 1; }
  # Byte-compile .venv on every core at once (pip compiles one file at a time: twice as long). Every
  # notebook's kernel imports torch and transformers; where PYTHONDONTWRITEBYTECODE is set (as on
  # this project's CI machines) nothing compiled is kept, and without these files each import took
  # 29 s instead of 14 (measured). compileall exits 1 over the few files that are not Python 3
  # (templates, test data), and carries on past them.
  [ -n "$venv" ] && { "$PYTHON" -m compileall -qq -j 0 "$venv/lib" || true; }
  echo "$want" >"$stamp"
fi
export PYTHON
