#!/bin/sh
# Nagios-style check: WARNING while security updates are pending (the security timer should
# install them within the deadline), per UPKEEP_PACKAGE_FAMILY.
set -u
case $UPKEEP_PACKAGE_FAMILY in
  apt) pending=$(apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null | grep '^Inst ' | grep -ci 'security') ;;
  dnf) pending=$(dnf -q updateinfo list --security --available 2>/dev/null | grep -c .) ;;
  *) echo "UNKNOWN: package family $UPKEEP_PACKAGE_FAMILY"; exit 3 ;;
esac
if [ "$pending" -gt 0 ]; then
  echo "WARNING: $pending security updates pending"
  exit 1
fi
echo "OK: no security updates pending"
