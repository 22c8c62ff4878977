#!/bin/sh
# Nagios-style check: SMART overall health (smartctl -H) of every disk smartctl finds.
set -u
devices=$(smartctl --scan | awk '{ print $1 }')
if [ -z "$devices" ]; then
  echo "UNKNOWN: smartctl finds no disks"
  exit 3
fi
failing='' unreadable=''
for device in $devices; do
  smartctl -H -- "$device" >/dev/null 2>&1
  rc=$?
  # smartctl's exit status is a bit mask: bit 1 "device open failed", bit 3 "disk failing".
  if [ $((rc & 8)) -ne 0 ]; then failing="$failing $device"; elif [ $((rc & 3)) -ne 0 ]; then unreadable="$unreadable $device"; fi
done
if [ -n "$failing" ]; then echo "CRITICAL: SMART reports failing disks:$failing"; exit 2; fi
if [ -n "$unreadable" ]; then echo "UNKNOWN: cannot read SMART data of$unreadable"; exit 3; fi
echo "OK: SMART health passed on $(echo "$devices" | wc -w) disks"
