#!/usr/bin/env bash
# Installs the Debian packages pm builds and tests with, if any is missing.
set -euo pipefail
packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
          libcriterion-dev libsodium-dev libopenmpi-dev openmpi-bin procps python3
          python3-venv libhdf5-dev hdf5-tools libcurl4-openssl-dev curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
