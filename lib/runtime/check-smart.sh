#!/bin/sh
# Nagios-style check: SMART overall health (smartctl -H) of every disk smartctl finds. A disk is
# healthy only when smartctl says so in words ("PASSED", or "OK" for SCSI): a disk whose SMART is
# disabled, or whose health command failed, has said nothing, and is UNKNOWN, never OK.
set -u
devices=$(smartctl --scan | awk '{ print $1 }')
if [ -z "$devices" ]; then
  echo "UNKNOWN: smartctl finds no disks"
  exit 3
fi
failing='' unreadable=''
for device in $devices; do
  out=$(smartctl -H -- "$device" 2>&1)
  rc=$?
  # smartctl's exit status is a bit mask: bit 0 bad command line, bit 1 device open failed, bit 2
  # a SMART command failed, bit 3 "disk failing".
  if [ $((rc & 8)) -ne 0 ]; then
    failing="$failing $device"
  elif [ $((rc & 7)) -ne 0 ] || ! printf '%s\n' "$out" | grep -Eq 'self-assessment test result: PASSED|SMART Health Status: OK'; then
    unreadable="$unreadable $device"
  fi
done
if [ -n "$failing" ]; then echo "CRITICAL: SMART reports failing disks:$failing"; exit 2; fi
if [ -n "$unreadable" ]; then echo "UNKNOWN: no SMART health verdict for$unreadable (SMART disabled, or its command failed)"; exit 3; fi
echo "OK: SMART health passed on $(echo "$devices" | wc -w) disks"
