#!/usr/bin/env bash
# Installs the Debian 12 packages Switchyard builds and tests with, and the
# browser test's npm packages (tests/browser, from its package-lock.json).
# Idempotent: prints nothing and touches nothing when everything is present.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

packages=(
  build-essential cmake ninja-build ccache pkg-config curl
  libboost1.81-dev libboost-json1.81-dev libssl-dev libicu-dev libexpected-dev
  catch2 libsqlite3-dev libtomlplusplus-dev libcli11-dev libpcap-dev
  openssl   # the test certificates: fixtures/certs/make-certs.sh
  chromium  # the browser test: tests/browser/page_test.mjs
)
# Node.js and npm run the browser test; a machine may have them from elsewhere.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: ${missing[*]} must be installed, which needs root, and sudo is not installed:" >&2
      echo "setup: run tools/setup.sh as root once (su -c tools/setup.sh), or install sudo" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core, exactly as the lock file pins it; it drives Debian's
# chromium and downloads no browser of its own. npm records what it
# installed in node_modules/.package-lock.json: older than the lock file
# means the lock file changed since.
browser="$root/tests/browser"
installed="$browser/node_modules/.package-lock.json"
if [ ! -f "$installed" ] || [ "$browser/package-lock.json" -nt "$installed" ]; then
  echo "setup: npm ci in tests/browser" >&2
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
