#!/usr/bin/env bash
# Installs the Debian 12 packages Switchyard builds and tests with.
# Idempotent: prints nothing and touches nothing when every package is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config curl
  libboost1.81-dev libboost-json1.81-dev libssl-dev libicu-dev libexpected-dev
  catch2 libsqlite3-dev libtomlplusplus-dev libcli11-dev libpcap-dev
  openssl  # the test certificates: fixtures/certs/make-certs.sh
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
