#!/bin/sh
# Nagios-style check: the security deadline as a clock. A pending security fix is expected (staging
# tests it, then `upkeep update security` promotes it), so this is CRITICAL only when a fix has
# been pending longer than UPKEEP_SECURITY_DEADLINE seconds since the host first saw it in the
# archive (STATE/updates/pending, recorded by updates.sh on every run), e.g. when the pipeline that
# promotes fixes has not run. dnf hosts: WARNING while security updates are pending.
# UPKEEP_NOW (seconds since the epoch) replaces the clock, for tests.
set -u
case $UPKEEP_PACKAGE_FAMILY in
  apt) ;;
  dnf)
    pending=$(dnf -q updateinfo list --security --available 2>/dev/null | grep -c .)
    if [ "$pending" -gt 0 ]; then
      echo "WARNING: $pending security updates pending"
      exit 1
    fi
    echo "OK: no security updates pending"
    exit 0
    ;;
  *) echo "UNKNOWN: package family $UPKEEP_PACKAGE_FAMILY"; exit 3 ;;
esac
record=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/updates/pending
if [ ! -r "$record" ]; then
  # A new host until its first security run (5 minutes after boot): nothing has been seen yet,
  # so no clock runs. A security run that keeps failing shows up in the failed-units check.
  echo "OK: no updates recorded yet (upkeep-security-updates.service has not run)"
  exit 0
fi
now=${UPKEEP_NOW:-$(date +%s)}
deadline=${UPKEEP_SECURITY_DEADLINE:?}
# "package version first-seen kind" -> "count oldest-age oldest-package"
summary=$(awk -v now="$now" 'BEGIN { max = -1 } $4 == "security" { n++; age = now - $3; if (age > max) { max = age; pkg = $1 " " $2 } }
  END { if (n) print n, max, pkg; else print 0 }' "$record")
# shellcheck disable=SC2086 # split into its fields
set -- $summary
count=$1
# Since when and how many, for `upkeep status` (the age of pending fixes against the deadline).
status_record=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks/security-pending
if [ "$count" = 0 ]; then
  rm -f "$status_record"
  echo "OK: no security updates pending"
  exit 0
fi
age=$2 oldest="$3 $4"
mkdir -p "$(dirname "$status_record")" && echo "$((now - age)) $count" >"$status_record"
if [ "$age" -gt "$deadline" ]; then
  echo "CRITICAL: security fix $oldest pending for $((age / 3600))h$((age % 3600 / 60))m, past the ${deadline}s deadline ($count pending)"
  exit 2
fi
echo "OK: $count security fix(es) pending, oldest $oldest for $((age / 60))m of the ${deadline}s deadline"
