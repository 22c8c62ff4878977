#!/bin/sh
# Writes this host's upkeep state for node_exporter's textfile collector, in Prometheus' text
# exposition format: every check's severity, failure count, alert state and last run (from the
# state files run-check.sh keeps), the last successful backup and update runs. Written to a
# temporary file in the same directory and renamed, so the collector never reads half a file.
# Does nothing when the collector's directory does not exist (node_exporter not installed).
#
# Usage: write-metrics.sh   (run-check.sh calls it after every check run)
set -eu

config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
out_dir=${UPKEEP_TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}
[ -d "$out_dir" ] || exit 0

# Label value: backslash, quote and newline escaped as the exposition format wants.
label() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }'; }

tmp=$(mktemp "$out_dir/.upkeep.prom.XXXXXX")
trap 'rm -f "$tmp" "$tmp.checks"' EXIT
rm -f "$tmp.checks"
for env in "$config_dir"/checks/*.env; do
  [ -f "$env" ] || continue
  id=$(basename "$env" .env)
  state="$state_dir/checks/$id"
  [ -f "$state" ] || continue
  (
    # shellcheck source=/dev/null
    . "$env"
    failures=0 alerted=0 severity=unknown
    # shellcheck source=/dev/null
    . "$state"
    case $severity in
      ok) code=0 ;;
      warning) code=1 ;;
      critical) code=2 ;;
      *) code=3 ;;
    esac
    labels="host=\"$(label "${UPKEEP_CHECK_SUBJECT:-}")\",check=\"$(label "${UPKEEP_CHECK_NAME:-}")\",kind=\"$(label "${UPKEEP_CHECK_KIND:-}")\""
    printf 'upkeep_check_status{%s} %s\n' "$labels" "$code"
    printf 'upkeep_check_failures{%s} %s\n' "$labels" "$failures"
    printf 'upkeep_check_alerting{%s} %s\n' "$labels" "$alerted"
    printf 'upkeep_check_last_run_timestamp_seconds{%s} %s\n' "$labels" "$(stat -c %Y "$state")"
  ) >>"$tmp.checks"
done
{
  # Each family's lines together, after its HELP and TYPE, as the format requires.
  while IFS='|' read -r metric help; do
    printf '# HELP upkeep_check_%s %s\n# TYPE upkeep_check_%s gauge\n' "$metric" "$help" "$metric"
    grep "^upkeep_check_${metric}{" "$tmp.checks" || true
  done <<'FAMILIES'
status|Severity of the last run: 0 ok, 1 warning, 2 critical, 3 unknown.
failures|Consecutive failed runs.
alerting|1 while the alert is firing.
last_run_timestamp_seconds|When the check last ran.
FAMILIES
  if [ -f "$state_dir/backup/backup.status" ]; then
    read -r at result _ <"$state_dir/backup/backup.status"
    echo '# HELP upkeep_backup_last_run_timestamp_seconds When the last backup ended, by its result.'
    echo '# TYPE upkeep_backup_last_run_timestamp_seconds gauge'
    printf 'upkeep_backup_last_run_timestamp_seconds{result="%s"} %s\n' "$(label "$result")" "$at"
  fi
  first=1
  for kind in security routine; do
    [ -f "$state_dir/updates-$kind.last" ] || continue
    if [ "$first" = 1 ]; then
      echo '# HELP upkeep_updates_last_success_timestamp_seconds When an update run last succeeded, by kind.'
      echo '# TYPE upkeep_updates_last_success_timestamp_seconds gauge'
      first=0
    fi
    printf 'upkeep_updates_last_success_timestamp_seconds{kind="%s"} %s\n' "$kind" "$(cat "$state_dir/updates-$kind.last")"
  done
} >"$tmp"
rm -f "$tmp.checks"
chmod 0644 "$tmp"
mv "$tmp" "$out_dir/upkeep.prom"
