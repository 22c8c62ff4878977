#!/bin/sh
# The fresh-machine proof: a clean clone of this repository's HEAD, in a chroot holding only what
# a fresh machine of this project's kind has (a minimal Debian system with this machine's CA
# certificates, Node.js and npm copied from this machine with their npm settings, python3, git,
# make, g++), runs what a new user and CI run:
#   1. npm ci && npm test             must pass, skipping what needs a missing program, loudly;
#   2. CI=true bash .ci/run           installs what the tests need (test/setup.sh) and must pass
#                                     with every test required (UPKEEP_REQUIRE_FLEET=1).
# Usage, as root on Debian (needs debootstrap and this checkout's node_modules):
#   sh test/fresh-machine.sh [--node-only] [WORKDIR]
# The chroot shares this machine's network, /dev, /proc, /sys and the test fleet's address claims
# (/run/upkeep-testbed), so it may boot test hosts beside other test runs. Each step's output is
# kept in WORKDIR/*.log; the last lines of each are printed.
set -eu

node_only=no
if [ "${1:-}" = --node-only ]; then node_only=yes; shift; fi
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/upkeep-fresh-machine}
base="$work/base"
root="$work/root"

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-machine.sh: must run as root (debootstrap, chroot, mount)" >&2
  exit 1
fi

mounted=''
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  for m in $mounted; do umount -R -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

if [ ! -e "$base/.complete" ]; then
  mirror=$(cd "$repo" && node --import tsx test/fleet/apt-mirror.ts)
  rm -rf "$base"
  mkdir -p "$work"
  debootstrap --variant=minbase --include=ca-certificates,git,make,g++,python3 bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1
  # Node.js as this machine has it: the files of its package, the global npm (updated when the
  # machine starts, so newer than the package's), and npm's settings.
  dpkg-query -L nodejs | while read -r path; do
    if [ -f "$path" ] || [ -L "$path" ]; then mkdir -p "$base$(dirname "$path")" && cp -a "$path" "$base$path"; fi
  done
  rm -rf "$base/usr/lib/node_modules"
  cp -a /usr/lib/node_modules "$base/usr/lib/node_modules"
  for link in /usr/bin/npm /usr/bin/npx; do cp -a "$link" "$base$link"; done
  # The machine's own certificate authorities (a registry reached through a proxy needs them).
  for file in /etc/npmrc /usr/etc/npmrc /root/.npmrc /usr/local/share/ca-certificates/*.crt /etc/ssl/certs/ca-certificates.crt; do
    if [ -f "$file" ]; then mkdir -p "$base$(dirname "$file")" && cp -a "$file" "$base$file"; fi
  done
  touch "$base/.complete"
fi

rm -rf "$root"
cp -a "$base" "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The chroot's / must be a mount point of its own: systemd-nspawn marks / as a slave mount.
mount --bind "$root" "$root"
mounted="$root"
for fs in proc sys dev; do
  mkdir -p "$root/$fs"
  mount --rbind "/$fs" "$root/$fs"
  mount --make-rslave "$root/$fs"
  mounted="$root/$fs $mounted"
done
mkdir -p /run/upkeep-testbed "$root/run/upkeep-testbed"
mount --bind /run/upkeep-testbed "$root/run/upkeep-testbed"
mounted="$root/run/upkeep-testbed $mounted"

git clone --quiet --no-hardlinks "$repo" "$root/root/upkeep"

in_chroot() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb NO_COLOR=1 "$@"
}

status=0
echo "== 1. npm ci && npm test, with only what a fresh machine has"
in_chroot sh -c 'cd /root/upkeep && npm ci --no-audit --no-fund && npm test' >"$work/node-only.log" 2>&1 || status=$?
grep -E 'SKIPPING|Test Files|Tests  ' "$work/node-only.log" || true
echo "exit status: $status (full output: $work/node-only.log)"
[ "$status" -eq 0 ] || exit "$status"
[ "$node_only" = no ] || exit 0

echo "== 2. CI=true bash .ci/run, as CI runs it"
in_chroot sh -c 'cd /root/upkeep && rm -rf node_modules && CI=true bash .ci/run' >"$work/ci.log" 2>&1 || status=$?
grep -E 'SKIPPING|Test Files|Tests  |passed, .* failed' "$work/ci.log" || true
echo "exit status: $status (full output: $work/ci.log)"
exit "$status"
