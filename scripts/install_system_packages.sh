#!/usr/bin/env bash
# Install what the tests need from the system's packages, where it is missing:
# - chromium: tests/test_browser.py drives it with Playwright (whose own browser download cannot
#   work offline);
# - zpaq: notebook 04 compares the models with it (context mixing, -m5); where it is missing the
#   notebook leaves it out (Kaggle, Colab), and so do the tests.
# Needs root or password-less sudo; otherwise it says what to run and returns non-zero (the browser
# test is then skipped, or fails where JUNGLEGPT_REQUIRE_BROWSER=1, as in CI).
set -uo pipefail
missing=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v zpaq >/dev/null || missing+=(zpaq)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "note: ${missing[*]} missing and cannot be installed without root: run 'sudo apt-get install ${missing[*]}'" >&2
  exit 1
fi
echo "Installing ${missing[*]} (for the tests) ..."
"${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null \
  || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; } \
  || { echo "note: could not install ${missing[*]} with apt-get" >&2; exit 1; }
