#!/bin/sh
# Installs every program the tests call that a fresh machine lacks (a minimal Debian system with
# Node.js, npm, python3, git, make and g++), and nothing else: test/programs.ts lists each
# program with its package, and test/programs.test.ts fails when this list and that one disagree.
# Run as root on Debian/Ubuntu; safe to run again.
set -eu

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (apt-get install)" >&2
  exit 1
fi

# One package a line: test/programs.test.ts reads this list.
packages='
bind9-dnsutils
chromium
curl
debian-archive-keyring
debootstrap
gpgv
jq
openssh-client
openssl
prometheus
prometheus-alertmanager
restic
shellcheck
systemd
systemd-container
'

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install -y --no-install-recommends $packages

# Every test host's systemd takes a dozen inotify instances, all counted against root: the
# default of 128 runs out at about ten hosts (the contract fleet boots nine, and parallel test runs
# add theirs); systemd then fails to start ("Too many open files").
inotify_instances=/proc/sys/fs/inotify/max_user_instances
if [ "$(cat "$inotify_instances")" -lt 1024 ]; then
  echo 1024 >"$inotify_instances"
fi
