#!/bin/sh
# Succeeds (and prints the local date the current window opened) only while the maintenance
# window is open: now lies within [opening, opening + duration) on the window's wall clock, in its
# time zone, on an opening day that is not a blackout date. Timers that fire late (Persistent=
# catch-up after boot) or on a blackout date run this first and skip disruptive work when it fails.
#
# Usage: in-window.sh [window.env]   (default /etc/upkeep/window.env)
# Exit: 0 open, 1 closed (ExecCondition= skips the unit), 255 bad configuration (ExecCondition=
# fails the unit, so a broken window is seen instead of silently skipping every run).
# UPKEEP_NOW (seconds since the epoch) replaces the clock, for tests.
set -eu

config=${1:-/etc/upkeep/window.env}
fail() {
  echo "in-window: $*" >&2
  exit 255
}
[ -r "$config" ] || fail "cannot read $config"
# shellcheck source=/dev/null
. "$config"

for name in UPKEEP_WINDOW_DAYS UPKEEP_WINDOW_START_MINUTE UPKEEP_WINDOW_DURATION UPKEEP_WINDOW_TZ; do
  eval "[ -n \"\${$name:-}\" ]" || fail "$name is not set in $config"
done
# glibc treats an unknown zone as UTC without complaint; refuse instead of opening at the wrong hour.
[ -f "${UPKEEP_ZONEINFO:-/usr/share/zoneinfo}/$UPKEEP_WINDOW_TZ" ] || fail "unknown time zone $UPKEEP_WINDOW_TZ"
nth=${UPKEEP_WINDOW_NTH:-}
blackouts=${UPKEEP_WINDOW_BLACKOUTS:-}
now=${UPKEEP_NOW:-$(date +%s)}

TZ=$UPKEEP_WINDOW_TZ
LC_ALL=C
export TZ LC_ALL

at() { date -d "@$1" "+$2"; }

days_in_month() { # YEAR MONTH
  case $2 in
    4 | 6 | 9 | 11) echo 30 ;;
    2) if [ $(($1 % 4)) = 0 ] && { [ $(($1 % 100)) != 0 ] || [ $(($1 % 400)) = 0 ]; }; then echo 29; else echo 28; fi ;;
    *) echo 31 ;;
  esac
}

# True when the local date of the instant $1 is a day the window opens on.
opens_on() {
  weekday=$(at "$1" %a | tr '[:upper:]' '[:lower:]')
  case " $UPKEEP_WINDOW_DAYS " in *" $weekday "*) ;; *) return 1 ;; esac
  day=$(at "$1" %-d)
  case $nth in
    '') return 0 ;;
    # By the local calendar: a week of seconds later is another local date across a clock change.
    last) [ $((day + 7)) -gt "$(days_in_month "$(at "$1" %Y)" "$(at "$1" %-m)")" ] ;;
    1 | 2 | 3 | 4) [ "$day" -gt $(((nth - 1) * 7)) ] && [ "$day" -le $((nth * 7)) ] ;;
    *) fail "bad UPKEEP_WINDOW_NTH: $nth" ;;
  esac
}

into_day=$(($(at "$now" %-H) * 3600 + $(at "$now" %-M) * 60 + $(at "$now" %-S)))
start=$((UPKEEP_WINDOW_START_MINUTE * 60))
end=$((start + UPKEEP_WINDOW_DURATION))

if [ "$into_day" -ge "$start" ] && [ "$into_day" -lt "$end" ]; then
  opening=$now
elif [ "$end" -gt 86400 ] && [ "$into_day" -lt $((end - 86400)) ]; then
  # A window that runs past midnight opened yesterday; noon yesterday is on yesterday's date
  # even on a day when clocks change.
  opening=$((now - into_day - 43200))
else
  echo "in-window: $(at "$now" '%F %H:%M %Z') is outside the maintenance window" >&2
  exit 1
fi

date=$(at "$opening" %F)
if ! opens_on "$opening"; then
  echo "in-window: the maintenance window does not open on $date" >&2
  exit 1
fi
case " $blackouts " in
  *" $date "*) echo "in-window: $date is a blackout date" >&2; exit 1 ;;
esac
echo "$date"
