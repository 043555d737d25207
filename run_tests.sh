#!/usr/bin/env bash
# Run the test suite in the same environment that run_all.sh uses (made on first use), with Chromium
# for the browser test installed from the system's packages when it is missing (root or sudo).
# Extra arguments go to pytest, e.g. ./run_tests.sh -k data -x
set -euo pipefail
source "$(dirname "$0")/scripts/setup_env.sh"
cd "$repo_root"
"$repo_root/scripts/install_chromium.sh" || true
exec "$PYTHON" -m pytest "$@"
