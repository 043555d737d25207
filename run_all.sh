#!/usr/bin/env bash
# Run the whole JungleGPT series: sets up the environment on first use, then runs every notebook
# in order with papermill. `./run_all.sh --help` lists the options.
set -euo pipefail
source "$(dirname "$0")/scripts/setup_env.sh"
exec "$PYTHON" -m junglegpt.run_all "$@"
