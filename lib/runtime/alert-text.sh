#!/bin/sh
# Text helpers for the programs that send alerts (sourced).

# json_string TEXT: TEXT as one JSON string; backslash and quote escaped, control characters
# dropped.

json_string() {
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# rfc3339 EPOCH: the time as Alertmanager and most JSON receivers read it, in UTC.
rfc3339() {
  date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ
}
