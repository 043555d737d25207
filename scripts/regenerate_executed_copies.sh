#!/usr/bin/env bash
# Make again every executed copy that the notebooks link as "Read it already run": the whole series
# in the quick profile, extras included, in a new folder, then copied into results/quick-cpu by
# junglegpt.report (pictures kept, 03 for 1M only), and the playground's screenshot taken from its
# models (figures/05_playground.png). Run it when a notebook's code changes
# (tests/test_executed_copies.py fails until you do); then set each link's label and the README's
# times to what the run printed. About 25 minutes on 2 cores (CONTRIBUTING); let nothing else run
# meanwhile: its times are quoted, and "auto" precision is timed once, by the first size.
#   scripts/regenerate_executed_copies.sh [OUT]    OUT: where the run goes (default: a new temporary folder)
set -euo pipefail
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  -*) echo "error: unknown option $1 (the one argument is OUT, a folder; --help says more)" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then echo "error: one argument at most, OUT (got $#); --help says more" >&2; exit 2; fi
source "$(dirname "$0")/setup_env.sh"
cd "$repo_root"
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/junglegpt-quick-XXXXXX")}
"$PYTHON" -m junglegpt.run_all --profile quick --sizes all --extras --out "$out"
"$PYTHON" -m junglegpt.report --out "$out" --name quick-cpu --fresh
# The playground's screenshot (the README's and notebook 05's) from this run's trained models.
JUNGLEGPT_PLAYGROUND_RUN="$out" JUNGLEGPT_SCREENSHOTS="$repo_root/figures" OMP_NUM_THREADS=1 \
  "$PYTHON" -m pytest -n 0 -p no:cacheprovider -q tests/test_browser.py -k playground
echo "Copied into results/quick-cpu. Now: the links' labels in notebooks/*.ipynb and the README's times"
echo "(the hardware: $("$PYTHON" -c 'from junglegpt.environment import describe_hardware; print(describe_hardware())'))."
