#!/bin/sh
# Installs what the test fleet (test/fleet/testbed.ts) and the tests that check generated files
# need on a Debian/Ubuntu machine: systemd-nspawn, debootstrap (with the Debian archive keyring it
# verifies the image against), the ssh client, restic, ShellCheck and ansible-core.
# Run as root; safe to run again.
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-ci.sh: must run as root (apt-get install)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
  systemd-container debootstrap debian-archive-keyring gpgv openssh-client restic shellcheck ansible-core
