#!/bin/sh
# Nagios-style check: CRITICAL when a mount point in UPKEEP_DISK_MOUNTS (separated by spaces) is
# fuller than UPKEEP_DISK_MAX_PERCENT, WARNING within 5 points of it.
set -u
worst=0 report=''
for mount in $UPKEEP_DISK_MOUNTS; do
  used=$(df -P -- "$mount" 2>/dev/null | awk 'NR == 2 { sub(/%$/, "", $5); print $5 }')
  if [ -z "$used" ]; then
    echo "UNKNOWN: cannot read the usage of $mount"
    exit 3
  fi
  report="$report $mount ${used}%"
  if [ "$used" -gt "$UPKEEP_DISK_MAX_PERCENT" ]; then
    worst=2
  elif [ "$used" -gt $((UPKEEP_DISK_MAX_PERCENT - 5)) ] && [ "$worst" -lt 1 ]; then
    worst=1
  fi
done
case $worst in
  0) echo "OK:$report used (limit ${UPKEEP_DISK_MAX_PERCENT}%)" ;;
  1) echo "WARNING:$report used (limit ${UPKEEP_DISK_MAX_PERCENT}%)" ;;
  2) echo "CRITICAL:$report used (limit ${UPKEEP_DISK_MAX_PERCENT}%)" ;;
esac
exit "$worst"
