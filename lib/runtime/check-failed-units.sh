#!/bin/sh
# Nagios-style check: CRITICAL when systemd has failed units.
set -u
units=$(systemctl --failed --no-legend --plain 2>&1) || {
  echo "UNKNOWN: systemctl --failed: $units"
  exit 3
}
units=$(printf '%s\n' "$units" | awk 'NF { print $1 }' | tr '\n' ' ')
if [ -n "$units" ]; then
  echo "CRITICAL: failed units: $units"
  exit 2
fi
echo "OK: no failed units"
