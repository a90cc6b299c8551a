#!/usr/bin/env bash
# Installs the Debian packages the local world needs (Prometheus, promtool, openssl) if missing.
# Used by `make demo`, `make test` and .ci/run; asks for sudo only when not root.
set -euo pipefail

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v openssl >/dev/null || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && { echo "system packages present"; exit 0; }
echo "installing with apt: ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
# The package would start Prometheus as a system daemon on every interface: forbid that while
# installing (the world starts its own on loopback), and put back whatever policy was there.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved=$(mktemp) && $sudo cp "$policy" "$saved"; fi
restore() { if [ -n "$saved" ]; then $sudo cp "$saved" "$policy"; rm -f "$saved"; else $sudo rm -f "$policy"; fi; }
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
$sudo chmod +x "$policy"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${missing[@]}" \
  || { $sudo apt-get update -q && $sudo apt-get install -y --no-install-recommends "${missing[@]}"; }
