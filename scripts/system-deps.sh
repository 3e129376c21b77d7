#!/usr/bin/env bash
# Installs the Debian packages CareLoop's tests and engine use, when they are missing.
# Needs root (or sudo). Safe to run repeatedly.
set -euo pipefail
want=(chromium fonts-noto-cjk gettext espeak-ng libsndfile1 libopus0 sip-tester baresip kamailio)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
