#!/bin/sh
# Nagios-style check: the hottest sensor of /sys/class/hwmon and /sys/class/thermal against
# UPKEEP_CPU_MAX_CELSIUS. UPKEEP_SYSFS (default /sys) lets tests point at a fake tree.
set -u
sysfs=${UPKEEP_SYSFS:-/sys}
hottest=$(cat "$sysfs"/class/hwmon/hwmon*/temp*_input "$sysfs"/class/thermal/thermal_zone*/temp 2>/dev/null |
  awk '$1 ~ /^-?[0-9]+$/ { if (max == "" || $1 > max) max = $1 } END { if (max != "") print int(max / 1000) }')
if [ -z "$hottest" ]; then
  echo "UNKNOWN: no temperature sensors under $sysfs"
  exit 3
fi
if [ "$hottest" -ge "$UPKEEP_CPU_MAX_CELSIUS" ]; then
  echo "CRITICAL: ${hottest}°C (limit ${UPKEEP_CPU_MAX_CELSIUS}°C)"
  exit 2
fi
if [ "$hottest" -ge $((UPKEEP_CPU_MAX_CELSIUS - 10)) ]; then
  echo "WARNING: ${hottest}°C (limit ${UPKEEP_CPU_MAX_CELSIUS}°C)"
  exit 1
fi
echo "OK: ${hottest}°C (limit ${UPKEEP_CPU_MAX_CELSIUS}°C)"
