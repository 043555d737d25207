#!/usr/bin/env bash
# Install Chromium from the system's packages if it is missing: tests/test_browser.py drives it with
# Playwright (whose own browser download cannot work offline). Needs root or password-less sudo;
# otherwise it says what to run and returns non-zero (the browser test is then skipped, or fails
# where JUNGLEGPT_REQUIRE_BROWSER=1, as in CI).
set -uo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "note: Chromium is missing and cannot be installed without root: run 'sudo apt-get install chromium'" >&2
  exit 1
fi
echo "Installing Chromium (for the browser test) ..."
"${sudo[@]}" apt-get install -y -q chromium >/dev/null \
  || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q chromium >/dev/null; } \
  || { echo "note: could not install Chromium with apt-get" >&2; exit 1; }
