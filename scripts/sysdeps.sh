#!/usr/bin/env bash
# System packages the test suite uses, from Debian: bubblewrap (Bash runs in its sandbox), ripgrep (Grep's
# fast path, tested against the Python fallback), chromium (the HTML trace is checked in a real headless
# browser), postgresql (the Postgres checkpointer is tested against a real server). Installs what is missing when it can (root + apt-get);
# otherwise says what to install and exits non-zero, so nothing is silently skipped.
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "the tests need these system packages: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
  exit 1
fi
