#!/usr/bin/env bash
# Run the test suite in the same environment that run_all.sh uses (made on first use), with Chromium
# (the browser test) and zpaq (notebook 04's comparison) installed from the system's packages when
# they are missing (root or sudo).
# Extra arguments go to pytest, e.g. ./run_tests.sh -k data -x
set -euo pipefail
source "$(dirname "$0")/scripts/setup_env.sh"
cd "$repo_root"
"$repo_root/scripts/install_system_packages.sh" || true
exec "$PYTHON" -m pytest "$@"
