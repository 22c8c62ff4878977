#!/bin/sh
# Nagios-style check: the last successful backup (status file written by backup.sh) is younger
# than UPKEEP_BACKUP_MAX_AGE seconds.
# A host that has never been backed up (just installed) is OK until the first scheduled backup
# is overdue: UPKEEP_BACKUP_MAX_AGE after the check first found no backup (recorded in
# checks/backup-awaited-since), which covers a daily schedule however late in the day it runs.
set -u
state=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
status=$state/backup/backup.status
awaited=$state/checks/backup-awaited-since
if [ ! -f "$status" ]; then
  [ -f "$awaited" ] || { mkdir -p "$(dirname "$awaited")" && date +%s >"$awaited"; }
  waited=$(($(date +%s) - $(cat "$awaited")))
  if [ "$waited" -gt "$UPKEEP_BACKUP_MAX_AGE" ]; then
    echo "CRITICAL: no backup has run on this host in $((waited / 3600))h ($status is missing)"
    exit 2
  fi
  # Hours rounded up: 25 h 59 min left is "due within 26h", not 25.
  echo "OK: no backup yet; the first scheduled one is awaited (due within $(((UPKEEP_BACKUP_MAX_AGE - waited + 3599) / 3600))h)"
  exit 0
fi
rm -f "$awaited"
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
