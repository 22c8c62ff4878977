#!/bin/sh
# Prints what this host has recorded about keeping its maintenance contract, for `upkeep status`:
# one line per fact, "KEY VALUE...". Read-only: it takes no lock, runs nothing, changes nothing,
# and a fact that was never recorded is simply not printed (status reports it as unknown).
#
#   facts 1                                  format version
#   now EPOCH                                the host's clock
#   generation G | none                      committed generation (/var/lib/upkeep/manifest)
#   plan PLAN_ID
#   routine-run EPOCH OPENING                last routine update run inside the window (updates.sh)
#   security-pending SINCE COUNT             fixes pending, first seen at SINCE (check-security-updates.sh)
#   reboot-required EPOCH                    /var/run/reboot-required exists, since its mtime
#   reboot-pending-since EPOCH               (check-reboot-required.sh)
#   backup JOB EPOCH RESULT DETAIL           JOB: backup, forget, check, drill (backup.sh)
#   check ID EPOCH SEVERITY SINCE FAILURES ALERTED   last run of a check, state since SINCE (run-check.sh)
#   check-message ID TEXT                    the check's last one-line message
#   alert EPOCH ID STATUS                    an alert a route accepted (run-check.sh)
#
# Text fields (OPENING, DETAIL, TEXT) come from the host and are shown only escaped.
# UPKEEP_ROOT reads an image root instead of / (as the agent does); UPKEEP_STATE_DIR replaces
# /var/lib/upkeep and UPKEEP_REBOOT_FLAG /var/run/reboot-required, for tests.
set -u

root=${UPKEEP_ROOT:-}
state=${UPKEEP_STATE_DIR:-$root/var/lib/upkeep}
flag=${UPKEEP_REBOOT_FLAG:-$root/var/run/reboot-required}

mtime() { stat -c %Y "$1" 2>/dev/null; }
one_line() { head -n 1 "$1" 2>/dev/null | tr -d '\000-\010\013-\037'; }
# A number, or nothing: a damaged record must not become a fact.
number() { case $1 in '' | *[!0-9]*) return 1 ;; *) printf '%s' "$1" ;; esac; }

echo "facts 1"
echo "now $(date +%s)"
if [ -f "$state/manifest" ]; then
  awk '$1 == "generation" || $1 == "plan" { print $1, $2 }' "$state/manifest"
else
  echo "generation none"
fi

if [ -f "$state/routine-last-opening" ]; then
  echo "routine-run $(mtime "$state/routine-last-opening") $(one_line "$state/routine-last-opening")"
fi
if [ -f "$state/checks/security-pending" ]; then
  read -r since count _ <"$state/checks/security-pending" || true
  if number "${since:-}" >/dev/null && number "${count:-}" >/dev/null; then echo "security-pending $since $count"; fi
fi
if [ -f "$flag" ]; then echo "reboot-required $(mtime "$flag")"; fi
if [ -f "$state/checks/reboot-pending-since" ]; then
  since=$(one_line "$state/checks/reboot-pending-since")
  if number "$since" >/dev/null; then echo "reboot-pending-since $since"; fi
fi

for job in backup forget check drill; do
  f=$state/backup/$job.status
  [ -f "$f" ] && echo "backup $job $(one_line "$f")"
done

for f in "$state"/checks/*; do
  [ -f "$f" ] || continue
  id=${f##*/}
  # State files are named by check id (letters, digits, dashes); everything else there is not one.
  case $id in *[!a-z0-9-]* | reboot-pending-since | security-pending) continue ;; esac
  failures='' alerted='' severity='' since=''
  while IFS='=' read -r key value; do
    case $key in
      failures) failures=$value ;;
      alerted) alerted=$value ;;
      severity) severity=$value ;;
      since) since=$value ;;
    esac
  done <"$f"
  case $severity in ok | warning | critical | unknown) ;; *) severity=unknown ;; esac
  echo "check $id $(mtime "$f") $severity $(number "$since" || echo -) $(number "$failures" || echo 0) $(number "$alerted" || echo 0)"
  [ -f "$f.message" ] && echo "check-message $id $(one_line "$f.message")"
done

if [ -f "$state/checks/alerts.log" ]; then
  # The last 200 alerts are plenty for one report period.
  tail -n 200 "$state/checks/alerts.log" | awk 'NF == 3 && $1 ~ /^[0-9]+$/ && $2 ~ /^[a-z0-9-]+$/ && ($3 == "firing" || $3 == "resolved") { print "alert", $1, $2, $3 }'
fi
exit 0
