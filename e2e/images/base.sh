#!/usr/bin/env bash
# The local base image: Debian bookworm (debootstrap minbase) with Python 3.11 and venv, made from
# the Debian mirror apt already reaches, for machines where no registry can be pulled from. It
# stands in for python:3.11-slim through the Dockerfiles' `BASE` build argument.
#
#   e2e/images/base.sh TARBALL    # writes the root filesystem as a gzipped tarball
#
# e2e/images/build.sh keys the tarball by this file's content hash: a change here is a new base.
# DEBIAN_MIRROR overrides the mirror (default: the first Debian one in apt's sources).
set -euo pipefail
# dockerd and debootstrap live in sbin, which a user's PATH (or an `env -i` one) may lack.
export PATH=$PATH:/usr/sbin:/sbin
out=$1
sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo

mirror=${DEBIAN_MIRROR:-$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d)
trap '$sudo rm -rf "$root"' EXIT
# ca-certificates: the operator talks TLS to Prometheus and webhooks with the system's roots,
# as it would on python:3.11-slim.
$sudo debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
  > "$out.log" 2>&1 || { tail -20 "$out.log" >&2; exit 1; }
# What a container never uses: package lists and caches, documentation, locales, man pages.
$sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
$sudo tar --numeric-owner -C "$root" -c . | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
