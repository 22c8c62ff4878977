#!/bin/sh
# The backup host's volume at the backup root, so that the repositories it receives live on the
# volume and never on the root disk: the one Hetzner Cloud volume attached to this server
# (/dev/disk/by-id/scsi-0HC_Volume_<id>) is mounted at ROOT. Run by upkeep-backup-volume.service at
# boot, and by bin/apply before it creates the repository directories.
#
# Usage: backup-volume.sh ROOT
# Exits 0 when ROOT is a mount point (already, or now); otherwise 1 and says why: the unit fails
# (the failed-units check tells a human), and until ROOT is mounted the backup host refuses to
# store backups (its sshd forced command and retention jobs check that ROOT is a mount point).
set -eu

root=${1:?usage: backup-volume.sh ROOT}
if mountpoint -q "$root"; then
  echo "backup-volume: $root is mounted"
  exit 0
fi
set -- /dev/disk/by-id/scsi-0HC_Volume_*
if [ ! -e "$1" ]; then
  echo "backup-volume: no volume is attached to this server (no /dev/disk/by-id/scsi-0HC_Volume_*); $root stays unmounted and the backup host refuses backups" >&2
  exit 1
fi
if [ $# -gt 1 ]; then
  echo "backup-volume: $# volumes are attached ($*); which one holds the backups is not known, $root stays unmounted" >&2
  exit 1
fi
mkdir -p "$root"
mount -o nodev,nosuid,noexec "$1" "$root"
echo "backup-volume: $1 mounted at $root"
