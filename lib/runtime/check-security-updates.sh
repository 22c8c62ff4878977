#!/bin/sh
# Nagios-style check: WARNING while security updates are pending (the security timer should
# install them within the deadline), per UPKEEP_PACKAGE_FAMILY.
set -u
case $UPKEEP_PACKAGE_FAMILY in
  apt) pending=$(apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null | grep '^Inst ' | grep -ci 'security') ;;
  dnf) pending=$(dnf -q updateinfo list --security --available 2>/dev/null | grep -c .) ;;
  *) echo "UNKNOWN: package family $UPKEEP_PACKAGE_FAMILY"; exit 3 ;;
esac
# First seen and how many, for `upkeep status` (the age of pending fixes against the deadline).
record=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks/security-pending
if [ "$pending" -gt 0 ]; then
  since=$(cut -d ' ' -f 1 "$record" 2>/dev/null)
  case $since in '' | *[!0-9]*) since=$(date +%s) ;; esac
  mkdir -p "$(dirname "$record")" && echo "$since $pending" >"$record"
  echo "WARNING: $pending security updates pending"
  exit 1
fi
rm -f "$record"
echo "OK: no security updates pending"
