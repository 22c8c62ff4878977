#!/bin/sh
# Installs updates with the distribution's own tool, driven by upkeep's timers (the stock
# apt-daily-upgrade / dnf-automatic timers are switched off so that runs happen only here).
#
# Usage: updates.sh security|routine
#   security  fixes from security origins only; never reboots (reboots wait for the window)
#   routine   every update of the release; run inside the maintenance window
# Reads /etc/upkeep/updates.env (UPKEEP_PACKAGE_FAMILY). A routine run inside the window records
# the window's opening date in /var/lib/upkeep/routine-last-opening.
set -eu

kind=${1:?usage: updates.sh security|routine}
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
# shellcheck source=/dev/null
. "$config_dir/updates.env"

case $kind in security | routine) ;; *) echo "updates: unknown kind: $kind" >&2; exit 2 ;; esac

case $UPKEEP_PACKAGE_FAMILY in
  apt)
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update
    if [ "$kind" = security ]; then
      # The security configuration re-reads its origins after /etc/apt/apt.conf.d, so they win.
      APT_CONFIG="$config_dir/apt/security.conf" unattended-upgrade -v
    else
      unattended-upgrade -v
    fi
    ;;
  dnf)
    dnf-automatic --installupdates "$config_dir/dnf/$kind.conf"
    ;;
  *)
    echo "updates: unknown package family: $UPKEEP_PACKAGE_FAMILY" >&2
    exit 2
    ;;
esac

# For the metrics file (write-metrics.sh): when this kind of run last succeeded.
mkdir -p "$state_dir"
date +%s >"$state_dir/updates-$kind.last"

if [ "$kind" = routine ]; then
  # reboot.sh waits for this record, so a reboot never comes before this window's updates.
  if opening=$("$(dirname "$0")/in-window.sh" "$config_dir/window.env"); then
    mkdir -p "$state_dir"
    echo "$opening" >"$state_dir/routine-last-opening"
  fi
fi
