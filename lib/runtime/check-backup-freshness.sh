#!/bin/sh
# Nagios-style check: the last successful backup (status file written by backup.sh) is younger
# than UPKEEP_BACKUP_MAX_AGE seconds.
set -u
status=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/backup/backup.status
if [ ! -f "$status" ]; then
  echo "CRITICAL: no backup has run on this host ($status is missing)"
  exit 2
fi
read -r at result detail <"$status"
age=$(($(date +%s) - at))
if [ "$result" = failed ]; then
  echo "CRITICAL: the last backup failed: $detail"
  exit 2
fi
if [ "$age" -gt "$UPKEEP_BACKUP_MAX_AGE" ]; then
  echo "CRITICAL: the last backup is $((age / 3600))h old (limit $((UPKEEP_BACKUP_MAX_AGE / 3600))h)"
  exit 2
fi
if [ "$result" != ok ]; then
  echo "WARNING: the last backup, $((age / 3600))h ago: $detail"
  exit 1
fi
echo "OK: the last backup is $((age / 60))m old"
