#!/usr/bin/env bash
# System packages from Debian: bubblewrap (Bash runs in its sandbox: `make run` needs it), and for the test
# suite ripgrep (Grep's fast path, tested against the Python fallback), chromium (the HTML trace is checked in
# a real headless browser), postgresql (the Postgres checkpointer is tested against a real server).
#   bash scripts/sysdeps.sh            # everything the tests use
#   bash scripts/sysdeps.sh bubblewrap # only the sandbox
# Installs what is missing when it can (root + apt-get); otherwise says what to install and exits non-zero,
# so nothing is silently skipped.
set -euo pipefail
wanted=("${@:-bubblewrap ripgrep chromium postgresql}")
wanted=(${wanted[*]})
need=()
for package in "${wanted[@]}"; do
  case "$package" in
    bubblewrap) command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap) ;;
    ripgrep) command -v rg >/dev/null 2>&1 || need+=(ripgrep) ;;
    chromium) command -v chromium >/dev/null 2>&1 || need+=(chromium) ;;
    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql) ;;
    *) echo "sysdeps.sh: unknown package $package" >&2; exit 2 ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "the tests need these system packages: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
  exit 1
fi
