#!/bin/sh
# Whether this member of a reboot set is ready, so that another member may begin its reboot: every
# one of this host's own checks (UPKEEP_REBOOT_READY_CHECKS in reboot-set.env: the run-check units
# about this host that run on it, but its reboot-required check) has run since this host booted and
# its last run passed as the health gate counts it (OK or WARNING; CRITICAL and UNKNOWN do not).
# A host that just came back from a reboot is not ready until each check has run once more.
#
# Prints one line saying why, and exits 0 ready; 1 not ready, still within UPKEEP_REBOOT_READY_WITHIN
# seconds of the boot (time for every check's first runs, see lib/compile/reboot-set.ts); 2 not
# ready later than that (an incident: the other members hold their reboots until it passes);
# 3 cannot tell.
set -u

config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
checks_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/checks
[ -r "$config_dir/reboot-set.env" ] || { echo "reboot-ready: cannot read $config_dir/reboot-set.env"; exit 3; }
# shellcheck source=/dev/null
. "$config_dir/reboot-set.env"

# The boot is PID 1's start: its start in clock ticks after the kernel booted (field 22 of
# /proc/1/stat, counted after the parenthesised command name) plus the kernel's boot time. In a
# container this is the container's boot, where the kernel's own boot time would not be.
ticks=$(sed 's/^.*) //' /proc/1/stat | cut -d ' ' -f 20)
btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
hz=$(getconf CLK_TCK)
case $ticks/$btime/$hz in
  *[!0-9/]* | /* | */ | *//*) echo "reboot-ready: cannot tell when this host booted"; exit 3 ;;
esac
boot=$((btime + ticks / hz))
now=$(date +%s)

waiting=
for id in ${UPKEEP_REBOOT_READY_CHECKS:-}; do
  state="$checks_dir/$id"
  if [ ! -f "$state" ] || [ "$(stat -c %Y "$state")" -lt "$boot" ]; then
    waiting="$waiting $id (not run since the boot)"
    continue
  fi
  severity=$(sed -n 's/^severity=//p' "$state")
  case $severity in
    ok | warning) ;;
    *) waiting="$waiting $id (${severity:-no severity})" ;;
  esac
done

up=$((now - boot))
if [ -z "$waiting" ]; then
  echo "ready: every check of this host passed since it booted $up s ago"
  exit 0
fi
echo "not ready $up s after booting:$waiting"
[ "$up" -gt "${UPKEEP_REBOOT_READY_WITHIN:-0}" ] && exit 2
exit 1
