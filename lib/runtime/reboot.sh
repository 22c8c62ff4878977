#!/bin/sh
# Reboots the host when its policy asks for it, only inside the maintenance window, and at most
# once per window opening (so "always" and a reboot flag that survives a reboot cannot loop), and
# only after that window's routine updates (which may bring the reason to reboot) have run.
# A reboot that becomes pending outside the window waits for the next opening.
#
# Reads /etc/upkeep/updates.env (UPKEEP_PACKAGE_FAMILY, UPKEEP_REBOOT: never|when-needed|always).
set -eu

runtime_dir=$(dirname "$0")
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
# shellcheck source=/dev/null
. "$config_dir/updates.env"

rc=0
opening=$("$runtime_dir/in-window.sh" "$config_dir/window.env") || rc=$?
case $rc in
  0) ;;
  1)
    echo "reboot: outside the maintenance window; any pending reboot waits for the next opening"
    exit 0
    ;;
  *) exit "$rc" ;;
esac

if [ "$(cat "$state_dir/routine-last-opening" 2>/dev/null)" != "$opening" ]; then
  echo "reboot: waiting for the routine updates of the window that opened $opening"
  exit 0
fi

last="$state_dir/reboot-last-opening"
if [ -f "$last" ] && [ "$(cat "$last")" = "$opening" ]; then
  echo "reboot: already rebooted in the window that opened $opening"
  exit 0
fi

reboot_required() {
  case $UPKEEP_PACKAGE_FAMILY in
    apt) [ -f /var/run/reboot-required ] ;;
    # needs-restarting -r exits 1 when a reboot is needed.
    dnf) ! needs-restarting -r >/dev/null ;;
    *) echo "reboot: unknown package family: $UPKEEP_PACKAGE_FAMILY" >&2; exit 2 ;;
  esac
}

case $UPKEEP_REBOOT in
  never) exit 0 ;;
  always) ;;
  when-needed) reboot_required || { echo "reboot: no reboot required"; exit 0; } ;;
  *) echo "reboot: unknown reboot policy: $UPKEEP_REBOOT" >&2; exit 2 ;;
esac

mkdir -p "$state_dir"
echo "$opening" >"$last"
echo "reboot: rebooting in the window that opened $opening"
systemctl reboot
