#!/bin/sh
# Nagios-style check: a pending reboot is expected to wait for the next maintenance window, so
# this is CRITICAL only when it has been pending longer than UPKEEP_REBOOT_MAX_PENDING seconds.
#
# A member of a reboot set (/etc/upkeep/reboot-set.env) is also CRITICAL while it is not ready
# longer after a boot than its checks need to run (reboot-ready.sh exits 2): the other members of
# its set hold their reboots until it is, and a human must hear why.
set -u
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
if [ -r "$config_dir/reboot-set.env" ]; then
  said=$("$(dirname "$0")/reboot-ready.sh")
  case $? in
    2)
      # shellcheck source=/dev/null
      . "$config_dir/reboot-set.env"
      echo "CRITICAL: $said; the other members of reboot set $UPKEEP_REBOOT_SET hold their reboots until this host is ready"
      exit 2
      ;;
    3) echo "UNKNOWN: $said"; exit 3 ;;
  esac
fi
since=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks/reboot-pending-since
case $UPKEEP_PACKAGE_FAMILY in
  apt) [ -f /var/run/reboot-required ] && pending=1 || pending=0 ;;
  dnf) needs-restarting -r >/dev/null 2>&1 && pending=0 || pending=1 ;;
  *) echo "UNKNOWN: package family $UPKEEP_PACKAGE_FAMILY"; exit 3 ;;
esac
if [ "$pending" = 0 ]; then
  rm -f "$since"
  echo "OK: no reboot required"
  exit 0
fi
[ -f "$since" ] || { mkdir -p "$(dirname "$since")" && date +%s >"$since"; }
age=$(($(date +%s) - $(cat "$since")))
if [ "$age" -gt "$UPKEEP_REBOOT_MAX_PENDING" ]; then
  echo "CRITICAL: a reboot has been pending for $((age / 3600))h"
  exit 2
fi
echo "OK: a reboot is pending for $((age / 3600))h and waits for the maintenance window"
