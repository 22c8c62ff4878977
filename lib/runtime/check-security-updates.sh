#!/bin/sh
# Nagios-style check: the security deadline as a clock. A pending security fix is expected (staging
# tests it, then `upkeep update security` promotes it), so this is CRITICAL only when a fix has
# been pending longer than UPKEEP_SECURITY_DEADLINE seconds since the host first saw it in the
# archive (STATE/updates/pending, recorded by updates.sh on every run), e.g. when the pipeline that
# promotes fixes has not run. The record is only as new as the package lists it was made from:
# when updates.sh last read the archive completely (STATE/updates/archive-read) longer ago than the
# deadline, a fix could be pending past it unseen, so the check is UNKNOWN and says why
# (STATE/updates/archive-problem: the mirror unreachable, apt's state broken; or the security run
# no longer running). dnf hosts: WARNING while security updates are pending.
# UPKEEP_NOW (seconds since the epoch) replaces the clock, for tests.
set -u
case $UPKEEP_PACKAGE_FAMILY in
  apt) ;;
  dnf)
    # dnf's own failure (a mirror unreachable, an expired key, a broken cache) is not "nothing
    # pending": its exit status is kept, not lost in a pipeline.
    if ! list=$(dnf -q updateinfo list --security --available 2>&1); then
      echo "UNKNOWN: dnf cannot list security updates: $(printf '%s\n' "$list" | tail -n 1)"
      exit 3
    fi
    pending=$(printf '%s\n' "$list" | grep -c .)
    if [ "$pending" -gt 0 ]; then
      echo "WARNING: $pending security updates pending"
      exit 1
    fi
    echo "OK: no security updates pending"
    exit 0
    ;;
  *) echo "UNKNOWN: package family $UPKEEP_PACKAGE_FAMILY"; exit 3 ;;
esac
updates=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/updates
record=$updates/pending
now=${UPKEEP_NOW:-$(date +%s)}
deadline=${UPKEEP_SECURITY_DEADLINE:?}
duration() { echo "$(($1 / 3600))h$(($1 % 3600 / 60))m"; }
# "SECONDS", and "SINCE WHY" (see updates.sh); neither on a new host, nor before an upkeep that
# writes them has run.
read_at='' problem_since='' problem=''
[ ! -r "$updates/archive-read" ] || read -r read_at _ <"$updates/archive-read" || true
[ ! -r "$updates/archive-problem" ] || read -r problem_since problem <"$updates/archive-problem" || true
case $read_at in *[!0-9]* | '') read_at= ;; esac
case $problem_since in *[!0-9]* | '') problem_since= ;; esac
stale=
if [ -n "$read_at" ] && [ $((now - read_at)) -gt "$deadline" ]; then
  stale="the updates on offer were last read from the archive $(duration $((now - read_at))) ago, longer than the ${deadline}s deadline: ${problem:-no run of upkeep-security-updates.service has read it since}"
elif [ -z "$read_at" ] && [ -n "$problem_since" ] && [ $((now - problem_since)) -gt "$deadline" ]; then
  stale="the updates on offer have not been read from the archive for $(duration $((now - problem_since))), longer than the ${deadline}s deadline: $problem"
fi
# OK, saying $1, unless the record is too old to tell.
ok_unless_stale() {
  if [ -n "$stale" ]; then
    echo "UNKNOWN: $stale"
    exit 3
  fi
  echo "OK: $1"
  exit 0
}
if [ ! -r "$record" ]; then
  # A new host until its first security run (5 minutes after boot): nothing has been seen yet,
  # so no clock runs. A security run that keeps failing shows up in the failed-units check.
  ok_unless_stale "no updates recorded yet (upkeep-security-updates.service has not run)"
fi
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
  ok_unless_stale "no security updates pending"
fi
age=$2 oldest="$3 $4"
mkdir -p "$(dirname "$status_record")" && echo "$((now - age)) $count" >"$status_record"
if [ "$age" -gt "$deadline" ]; then
  echo "CRITICAL: security fix $oldest pending for $(duration "$age"), past the ${deadline}s deadline ($count pending)${stale:+; $stale}"
  exit 2
fi
ok_unless_stale "$count security fix(es) pending, oldest $oldest for $((age / 60))m of the ${deadline}s deadline"
