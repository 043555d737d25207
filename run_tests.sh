#!/usr/bin/env bash
# Run the test suite in the same environment that run_all.sh uses (made on first use), with Chromium
# (the browser test) and zpaq (notebook 04's comparison) installed from the system's packages when
# they are missing (root or sudo).
# Extra arguments go to pytest, e.g. ./run_tests.sh -k data -x
# The tests run in two processes (JUNGLEGPT_TEST_WORKERS=0: in this one); tests that share the smoke
# run or the simulated platforms stay together (tests/conftest.py).
set -euo pipefail
source "$(dirname "$0")/scripts/setup_env.sh"
cd "$repo_root"
"$repo_root/scripts/install_system_packages.sh" || true
# One torch thread per process: the two test processes and the smoke run share the cores, and torch's
# threads competing for them made training steps 2 to 3 times slower (measured on 2 cores).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$PYTHON" -m pytest -n "${JUNGLEGPT_TEST_WORKERS:-2}" --dist loadgroup --no-loadscope-reorder "$@"
