#!/bin/sh
# Updates, driven by upkeep's timers and by `upkeep update` (the stock apt-daily-upgrade /
# dnf-automatic timers are switched off so that runs happen only here).
#
# Usage: updates.sh security|routine    the timers' runs
#        updates.sh promote security|routine   (`upkeep update`, production: versions on stdin)
#        updates.sh staged                (`upkeep update`: what this staging host installed)
#
# The role (UPKEEP_UPDATE_ROLE in /etc/upkeep/updates.env) decides what a timer run installs:
#   staging     installs from the archive: security fixes (security origins only) on the security
#               run, every update of the release on the routine run (inside the window); what it
#               installed is recorded in STATE/updates/staged as "package version kind class
#               installed-at" (`staged` prints it with the age in seconds in place of the time)
#   production  installs nothing from the archive on its own. It installs only versions
#               `upkeep update` promoted (STATE/updates/promoted, written by `promote`), never
#               newer ones (apt-get install package=version): small ones at any run, disruptive
#               ones only on the routine run, inside the window; never a held package (UPKEEP_HOLD,
#               the policy's `hold`)
# Every run records the updates the archive offers in STATE/updates/pending as
# "package version first-seen kind": first-seen (seconds since the epoch) is when this host first
# saw an update of that package and kind, kept until it is installed; check-security-updates.sh
# alerts on its age against the deadline. A record is only as good as the package lists it was
# made from: STATE/updates/archive-read holds when a run last refreshed every list and recorded
# what they offer, STATE/updates/archive-problem ("SINCE WHY") why runs have failed to do so since
# SINCE, and the check alerts once that is longer ago than the deadline. A run that could not
# refresh the lists still does what it can with the old ones, then fails.
#
# kind: security (the version comes from a security suite; every update on a rolling channel) or
# routine. class: small (no reboot, no service restart), reboot (the package asked for one in
# /var/run/reboot-required.pkgs) or restart (needrestart found services to restart after it).
# A routine run inside the window records the window's opening date in STATE/routine-last-opening.
# UPKEEP_NOW (seconds since the epoch) replaces the clock, for tests.
set -eu

mode=${1:?usage: updates.sh security|routine|promote KIND|staged}
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
updates_dir=$state_dir/updates
runtime_dir=$(dirname "$0")
# shellcheck source=/dev/null
. "$config_dir/updates.env"
role=${UPKEEP_UPDATE_ROLE:-staging}
channel=${UPKEEP_UPDATE_CHANNEL:-stable}
hold=${UPKEEP_HOLD:-}
reboot_pkgs=${UPKEEP_REBOOT_REQUIRED_PKGS:-/var/run/reboot-required.pkgs}

kind=
case $mode in
  security | routine) kind=$mode ;;
  promote) kind=${2:-} ;;
  staged) ;;
  *) echo "updates: unknown mode: $mode" >&2; exit 2 ;;
esac
case $mode:$kind in staged: | *:security | *:routine) ;; *) echo "updates: unknown kind: $kind" >&2; exit 2 ;; esac
case $role in staging | production) ;; *) echo "updates: unknown role: $role" >&2; exit 2 ;; esac
mkdir -p "$updates_dir"

# Replaces $1 with stdin, atomically: a reader never sees half a record.
replace() {
  cat >"$1.new"
  mv -f "$1.new" "$1"
}

# Why this run fails: "updates: ..." lines, printed at its end, after everything it could still do.
failures=
fail_at_end() {
  failures="${failures}updates: $1
"
}
finish() {
  if [ -n "$failures" ]; then
    printf '%s' "$failures" >&2
    exit 1
  fi
}

# Notes why the archive could not be read, for check-security-updates.sh: "SINCE WHY", SINCE
# being when reading it first failed, kept while it keeps failing.
archive_problem() {
  since=
  [ ! -f "$updates_dir/archive-problem" ] || read -r since _ <"$updates_dir/archive-problem" || true
  echo "${since:-${UPKEEP_NOW:-$(date +%s)}} $1" | replace "$updates_dir/archive-problem"
}

# "package version" of every installed package.
installed() {
  case $UPKEEP_PACKAGE_FAMILY in
    apt) dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' | awk '$1 ~ /^.i/ { print $2, $3 }' ;;
    dnf) rpm -qa --qf '%{NAME} %{VERSION}-%{RELEASE}\n' ;;
  esac
}

# The line of apt's output $1 that says what went wrong: its first error, else its first warning,
# else its last line.
apt_error() {
  printf '%s\n' "$1" | awk '/^E: / && e == "" { e = $0 } /^W: / && w == "" { w = $0 } { last = $0 }
    END { print (e != "" ? e : w != "" ? w : last) }'
}

# Records the updates on offer with the time each was first seen (apt only; see the README).
# Fails, keeping the record as it was, when apt cannot say what is on offer (unmet dependencies,
# a broken package): an emptied record would restart the deadline's clock of every pending fix.
record_pending() {
  [ "$UPKEEP_PACKAGE_FAMILY" = apt ] || return 0
  now=${UPKEEP_NOW:-$(date +%s)}
  touch "$updates_dir/pending"
  # Inst NAME [OLD] (NEW LABEL:SUITE[, ...] [ARCH]): the suites of the new version say its kind.
  # An upgrade that needs a package the host lacks (a library transition on a rolling release, a
  # new kernel ABI package) is held back by a plain upgrade: with new packages allowed it is seen
  # and its clock runs. The new packages themselves ("Inst NAME (NEW ...)") are not updates.
  status=0
  offered=$(apt-get -s -o Debug::NoLocking=1 -o APT::Get::Upgrade-Allow-New=true upgrade 2>&1) || status=$?
  if [ "$status" != 0 ]; then
    why="apt-get -s upgrade failed (exit $status), so the updates on offer are unknown: $(apt_error "$offered")"
    archive_problem "$why"
    echo "updates: $why; the record of pending updates is kept as it was" >&2
    return 1
  fi
  printf '%s\n' "$offered" |
    awk -v channel="$channel" '/^Inst [^ ]+ \[/ {
      new = $0; sub(/^[^(]*\(/, "", new); origins = new; sub(/ .*/, "", new)
      kind = (channel == "rolling" || origins ~ /-security/) ? "security" : "routine"
      print $2, new, kind
    }' |
    awk -v now="$now" 'FILENAME == ARGV[1] { seen[$1 " " $4] = $3; next }
      { key = $1 " " $3; print $1, $2, (key in seen ? seen[key] : now), $3 }' "$updates_dir/pending" - |
    replace "$updates_dir/pending"
  if [ "$lists_fresh" = yes ]; then
    echo "$now" | replace "$updates_dir/archive-read"
    rm -f "$updates_dir/archive-problem"
  fi
}

# The class of each package in $1 ("package version" lines) just installed.
classify() {
  now=${UPKEEP_NOW:-$(date +%s)}
  restart=
  if command -v needrestart >/dev/null 2>&1; then
    # Batch mode lists the services still running old code; any of them makes the run disruptive.
    restart=$(needrestart -b -r l 2>/dev/null | grep '^NEEDRESTART-SVC:' || true)
  fi
  while read -r name version; do
    if [ -f "$reboot_pkgs" ] && grep -qx "$name" "$reboot_pkgs"; then
      class=reboot
    elif [ -n "$restart" ]; then
      class=restart
    else
      class=small
    fi
    pkind=$(awk -v p="$name" -v k="$kind" '$1 == p && $4 == "security" { k = "security" } END { print k }' "$updates_dir/pending")
    echo "$name $version $pkind $class $now"
  done <"$1"
}

install_from_archive() {
  before=$(mktemp)
  after=$(mktemp)
  changed=$(mktemp)
  trap 'rm -f "$before" "$after" "$changed"' EXIT
  installed | sort >"$before"
  case $UPKEEP_PACKAGE_FAMILY in
    apt)
      if [ "$kind" = security ] && [ "$channel" != rolling ]; then
        # The security configuration re-reads its origins after /etc/apt/apt.conf.d, so they win.
        APT_CONFIG="$config_dir/apt/security.conf" unattended-upgrade -v
      else
        unattended-upgrade -v
      fi
      ;;
    dnf)
      dnf-automatic --installupdates "$config_dir/dnf/$kind.conf"
      ;;
  esac
  installed | sort >"$after"
  comm -13 "$before" "$after" >"$changed"
  touch "$updates_dir/staged"
  classify "$changed" | awk 'FILENAME == ARGV[1] { new[$1] = $0; next } !($1 in new) { print } END { for (p in new) print new[p] }' - "$updates_dir/staged" |
    sort | replace "$updates_dir/staged"
}

# Whether the policy holds package $1: never upgraded automatically, promoted or not.
held() {
  case " $hold " in *" $1 "*) return 0 ;; esac
  return 1
}

# Installs the promoted versions this host is older than; disruptive ones only when $1 is "yes".
# Prints "installed NAME VERSION", "deferred NAME VERSION CLASS", "held NAME VERSION" and
# "refused NAME VERSION: WHY" lines; a refusal fails the run, at its end.
install_promoted() {
  touch "$updates_dir/promoted"
  targets=
  current=$(installed)
  while read -r name version class; do
    have=$(printf '%s\n' "$current" | awk -v p="$name" '$1 == p { print $2 }')
    # Only upgrades of what the host has: a package it lacks is not ours to add.
    [ -n "$have" ] || continue
    case $UPKEEP_PACKAGE_FAMILY in
      apt) dpkg --compare-versions "$have" lt "$version" || continue ;;
      dnf) [ "$have" != "$version" ] || continue ;;
    esac
    if held "$name"; then
      echo "held $name $version"
      continue
    fi
    if [ "$class" != small ] && [ "$1" != yes ]; then
      echo "deferred $name $version $class"
      continue
    fi
    targets="$targets $name=$version"
  done <"$updates_dir/promoted"
  [ -n "$targets" ] || return 0
  # shellcheck disable=SC2086 # one word per package=version
  case $UPKEEP_PACKAGE_FAMILY in
    apt) install_pinned $targets ;;
    dnf)
      # Nor as a dependency of another: dnf then fails the transaction rather than upgrade it.
      excludes=
      for name in $hold; do excludes="$excludes --exclude=$name"; done
      versions=
      for target in $targets; do versions="$versions ${target%%=*}-${target#*=}"; done
      dnf -y upgrade $excludes $versions >&2
      for target in $targets; do echo "installed ${target%%=*} ${target#*=}"; done
      ;;
  esac
}

# Installs the promoted versions $@ ("name=version" words) with apt, each only if apt then
# changes nothing but to versions staging ran and promoted. Left to itself apt upgrades or adds a
# dependency at the newest version in the archive, which staging may never have run; so every
# other package apt would install or upgrade is named at its promoted version, and a target for
# which that is not enough (a dependency staging ran no promoted version of, a held package, a
# removal) is refused: left as it is, reported, and the run fails.
# shellcheck disable=SC2086 # one word per package or package=version
install_pinned() {
  accepted=$*
  if ! admissible "$accepted"; then
    # One simulation per target, only when the whole set does not pass, to find those at fault.
    accepted=
    for target; do
      if admissible "$target"; then accepted="$accepted $target"; else refuse "$target" "$why"; fi
    done
    # Each may pass alone and not with the others (two needing different versions of a library).
    if [ -n "$accepted" ] && ! admissible "$accepted"; then
      for target in $accepted; do refuse "$target" "$why (with the other promoted updates)"; done
      accepted=
    fi
  fi
  [ -n "$accepted" ] || return 0
  pinned=
  for pin in $pins; do pinned="$pinned ${pin%%=*}"; done
  if [ -n "$pinned" ]; then manual=" $(apt-mark showmanual $pinned | tr '\n' ' ')"; fi
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold $accepted $pins >&2
  if [ -n "$pinned" ]; then
    # Named to pin their versions, they now count as installed by hand, which a dependency is not
    # (apt may remove it once nothing needs it, as on staging).
    auto=
    for name in $pinned; do
      case $manual in *" $name "*) ;; *) auto="$auto $name" ;; esac
    done
    [ -z "$auto" ] || apt-mark auto $auto >&2
  fi
  for target in $accepted; do echo "installed ${target%%=*} ${target#*=}"; done
}

refuse() {
  echo "refused ${1%%=*} ${1#*=}: $2"
  fail_at_end "promoted ${1%%=*} ${1#*=} not installed: $2"
}

# Whether apt, installing $1 ("name=version" words) with every other package it would install or
# upgrade pinned to its promoted version, changes nothing but to promoted versions. Sets pins
# ("name=version" words), and why when not.
admissible() {
  pins=
  why=
  while :; do
    status=0
    # shellcheck disable=SC2086 # one word per package=version
    simulated=$(apt-get -s -o Debug::NoLocking=1 install --no-install-recommends $1 $pins 2>&1) || status=$?
    if [ "$status" != 0 ]; then
      why="apt cannot install it (exit $status: $(apt_error "$simulated"))"
      return 1
    fi
    # Inst NAME [OLD] (NEW ...) and Remv NAME [OLD] -> "pin NAME=VERSION" for a package apt
    # would take at another version than its promoted one, "refuse WHY" for one it must not touch.
    # Pins only grow, each to a promoted version not named yet, so the loop ends.
    verdict=$(printf '%s\n' "$simulated" | awk -v words=" $1 $pins " -v hold=" $hold " '
      FILENAME == ARGV[1] { promoted[$1] = $2; next }
      /^Remv / { print "refuse it would remove " $2 }
      /^Inst / {
        name = $2; new = $0; sub(/^[^(]*\(/, "", new); sub(/ .*/, "", new)
        if (index(words, " " name "=" new " ")) next
        change = ($3 ~ /^\[/ ? "upgrade " name " to " new : "install " name " " new)
        if (index(hold, " " name " ")) print "refuse it would " change ", which the policy holds"
        else if (!(name in promoted)) print "refuse it would " change ", and no version of " name " has been promoted"
        else if (promoted[name] == new) next
        else if (index(words, " " name "=" promoted[name] " ")) print "refuse apt would install " name " " new " although " name " " promoted[name] " was asked for"
        else print "pin " name "=" promoted[name]
      }' "$updates_dir/promoted" -)
    why=$(printf '%s\n' "$verdict" | sed -n 's/^refuse //p' | head -n 1)
    [ -z "$why" ] || return 1
    more=$(printf '%s\n' "$verdict" | sed -n 's/^pin //p' | tr '\n' ' ')
    [ -n "$more" ] || return 0
    pins="$pins $more"
  done
}

in_window() {
  "$runtime_dir/in-window.sh" "$config_dir/window.env" >/dev/null 2>&1
}

if [ "$mode" = staged ]; then
  touch "$updates_dir/staged"
  # Only what the host still runs: a version it has since replaced was not what it tested.
  installed | awk -v now="${UPKEEP_NOW:-$(date +%s)}" 'FILENAME == ARGV[1] { have[$1 " " $2] = 1; next }
    ($1 " " $2) in have { age = now - $5; print $1, $2, $3, $4, (age < 0 ? 0 : age) }' - "$updates_dir/staged"
  exit 0
fi

if [ "$mode" = promote ]; then
  [ "$role" = production ] || { echo "updates: promote runs on production hosts only (this host is $role)" >&2; exit 2; }
  manifest=$(cat)
fi

export DEBIAN_FRONTEND=noninteractive
# Whether this run refreshed every package list: only then does the record of pending updates
# say what the archive offers now.
lists_fresh=no
if [ "$UPKEEP_PACKAGE_FAMILY" = apt ]; then
  # apt-get update exits 0 when it cannot fetch an index (the mirror down, the network cut) and
  # keeps the old lists, so a host would go on seeing no new fix, for ever. Error-Mode=any (apt
  # 2.1.16 and later: Debian 11, Ubuntu 22.04) makes that an error; older apt only warns.
  status=0
  fetched=$(apt-get -q -o APT::Update::Error-Mode=any update 2>&1) || status=$?
  [ -z "$fetched" ] || printf '%s\n' "$fetched" >&2
  unfetched=$(printf '%s\n' "$fetched" | grep -m1 '^[EW]: Failed to fetch' || true)
  if [ "$status" = 0 ] && [ -z "$unfetched" ]; then
    lists_fresh=yes
  else
    why="apt-get update could not refresh the package lists (exit $status: ${unfetched:-$(apt_error "$fetched")})"
    archive_problem "$why"
    fail_at_end "$why; this run went on with the lists of the last refresh"
  fi
fi

if [ "$mode" = promote ]; then
  # The manifest: "package version kind class" lines from staging. A security wave takes
  # security fixes only.
  touch "$updates_dir/promoted"
  printf '%s\n' "$manifest" | awk -v k="$kind" 'NF == 4 && ($3 == "security" || k == "routine") { print $1, $2, $4 }' |
    awk 'FILENAME == ARGV[1] { new[$1] = $0; next } !($1 in new) { print } END { for (p in new) print new[p] }' - "$updates_dir/promoted" |
    sort | replace "$updates_dir/promoted"
  if in_window; then disruptive=yes; else disruptive=no; fi
  install_promoted "$disruptive"
  record_pending
  finish
  exit 0
fi

record_pending
if [ "$role" = staging ]; then
  install_from_archive
  record_pending
else
  # The routine unit starts only inside the window (ExecCondition); the security run is not
  # tied to it and installs only small promoted updates.
  if [ "$kind" = routine ] && in_window; then disruptive=yes; else disruptive=no; fi
  install_promoted "$disruptive"
  record_pending
fi

mkdir -p "$state_dir"
if [ "$kind" = routine ]; then
  # reboot.sh waits for this record, so a reboot never comes before this window's updates (those
  # this run could install, even when it fails below).
  if opening=$("$runtime_dir/in-window.sh" "$config_dir/window.env"); then
    echo "$opening" >"$state_dir/routine-last-opening"
  fi
fi

finish
# For the metrics file (write-metrics.sh): when this kind of run last succeeded.
date +%s >"$state_dir/updates-$kind.last"
