#!/usr/bin/env bash
# Install the Debian packages that pole needs to build, test and run its demo.
# Idempotent: only what is missing is installed. As root it runs apt-get;
# otherwise it prints the exact command to run.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libzmq3-dev libczmq-dev libsqlite3-dev libconfig-dev libjansson-dev
  libcmocka-dev sqlite3 libcurl4-openssl-dev libsodium-dev libsystemd-dev
  clang libclang-rt-14-dev valgrind
  python3 python3-zmq python3-aiosmtpd
  systemd systemd-container man-db groff-base dpkg-dev file
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "pole: installing missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "pole: not root; run this, then try again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
