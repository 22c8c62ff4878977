#!/bin/sh
# Applies each declared mitigation while its fix is missing; reverts it once the installed package
# reaches the fixed version, and reverts what upkeep applied for a mitigation the policy no longer
# declares. `mitigations.sh verify` changes nothing and exits 2 (CRITICAL) unless every mitigation
# whose fix is missing is in effect and every other one that upkeep applied is reverted.
#
# Reads /etc/upkeep/mitigations.list: one mitigation per line, fields separated by tabs:
#   id  package  fixed-in (or "-")  action (mask-unit|stop-unit|firewall-port|drop-in)  argument
# firewall-port's argument is "port/protocol"; drop-in's is the target path, its content is
# /etc/upkeep/mitigations/<id>.content. Applied mitigations are remembered in
# /var/lib/upkeep/mitigations/<id> ("action argument") so that only what upkeep did is reverted,
# also once the list no longer names them.
# A drop-in is written or removed only where no other user can redirect the write (safe-path.sh):
# a mitigation refused for that is reported, the others still apply, and the program exits 1.
set -eu

mode=${1:-apply}
runtime_dir=$(dirname "$0")
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/mitigations
list=$config_dir/mitigations.list
# shellcheck source=/dev/null
. "$config_dir/updates.env"
case $mode in apply | verify) ;; *) echo "usage: mitigations.sh [apply|verify]" >&2; exit 2 ;; esac
[ "$mode" = verify ] || mkdir -p "$state_dir"
tab=$(printf '\t')

# True when package $1 is installed at version $2 or later.
fixed() {
  [ "$2" != - ] || return 1
  case $UPKEEP_PACKAGE_FAMILY in
    apt)
      installed=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || return 1
      dpkg --compare-versions "$installed" ge "$2"
      ;;
    dnf)
      installed=$(rpm -q --qf '%{EPOCHNUM}:%{VERSION}-%{RELEASE}' "$1" 2>/dev/null) || return 1
      python3 -c 'import rpm, sys
def evr(s):
    e, _, vr = s.rpartition(":")
    v, _, r = vr.partition("-")
    return (e or "0", v, r or None)
sys.exit(0 if rpm.labelCompare(evr(sys.argv[1]), evr(sys.argv[2])) >= 0 else 1)' "$installed" "$2"
      ;;
  esac
}

# True when the list names mitigation $1.
listed() {
  [ -f "$list" ] && cut -f1 "$list" | grep -qxF -- "$1"
}

# Writes drop-in $2 with the content of mitigation $1: a new file renamed over the target, so a
# symlink there is replaced, never followed.
write_drop_in() {
  "$runtime_dir/safe-path.sh" "$2" || return 1
  (umask 022 && mkdir -p "$(dirname "$2")") || return 1
  new=$(mktemp "$(dirname "$2")/.upkeep-mitigation.XXXXXX") || return 1
  if cat "$config_dir/mitigations/$1.content" >"$new" && chmod 0644 "$new" && mv -f -T "$new" "$2"; then return 0; fi
  rm -f "$new"
  return 1
}

reload=no
# Undoes action $2 (argument $3) of mitigation $1 and forgets it; $4 says why.
revert() {
  echo "mitigations: $1: $4; reverting $2 $3"
  case $2 in
    mask-unit) systemctl unmask "$3" ;;
    stop-unit) if systemctl -q is-enabled "$3"; then systemctl start "$3"; fi ;;
    drop-in)
      if ! { "$runtime_dir/safe-path.sh" "$3" && rm -f "$3"; }; then
        echo "mitigations: $1: cannot revert drop-in $3" >&2
        return 1
      fi
      case $3 in /etc/systemd/*) reload=yes ;; esac
      ;;
    firewall-port) ;;
  esac
  rm -f "$state_dir/$1"
}

problems=0
# verify: reports a mitigation that is not as it should be.
problem() {
  echo "mitigations: $*"
  problems=$((problems + 1))
}

# True when the firewall table drops port $1 (port/protocol).
port_closed() {
  command -v nft >/dev/null && nft list table inet upkeep_mitigations 2>/dev/null | grep -qF "${1#*/} dport ${1%/*} drop"
}

failed=0
firewall_rules=''
if [ -f "$list" ]; then
  # The list is read from fd 3 so that commands in the loop cannot swallow it from stdin.
  while IFS=$tab read -r id package fixed_in action argument <&3; do
    [ -n "$id" ] || continue
    if fixed "$package" "$fixed_in"; then
      if [ "$mode" = verify ]; then
        [ ! -f "$state_dir/$id" ] || problem "$id: $package is fixed but $action $argument is still applied"
        continue
      fi
      [ -f "$state_dir/$id" ] || continue
      revert "$id" "$action" "$argument" "$package is at $fixed_in or later" || failed=1
      continue
    fi
    if [ "$mode" = verify ]; then
      case $action in
        mask-unit) [ "$(systemctl is-enabled "$argument" 2>/dev/null)" = masked ] || problem "$id: $argument is not masked" ;;
        stop-unit) ! systemctl -q is-active "$argument" || problem "$id: $argument is running" ;;
        drop-in) [ "$(sha256sum <"$config_dir/mitigations/$id.content")" = "$(sha256sum <"$argument" 2>/dev/null)" ] || problem "$id: $argument does not hold the mitigation's content" ;;
        firewall-port) port_closed "$argument" || problem "$id: port $argument is not closed" ;;
      esac
      continue
    fi
    case $action in
      mask-unit) systemctl mask --now "$argument" ;;
      stop-unit) systemctl stop "$argument" ;;
      drop-in)
        if ! write_drop_in "$id" "$argument"; then
          echo "mitigations: $id: cannot write drop-in $argument" >&2
          failed=1
          continue
        fi
        case $argument in /etc/systemd/*) reload=yes ;; esac
        ;;
      firewall-port) firewall_rules="$firewall_rules ${argument#*/} dport ${argument%/*} drop;" ;;
      *) echo "mitigations: $id: unknown action $action" >&2; exit 2 ;;
    esac
    [ -f "$state_dir/$id" ] || echo "mitigations: $id: applied $action $argument until $package $fixed_in"
    echo "$action $argument" >"$state_dir/$id"
  done 3<"$list"
fi

# What upkeep applied for mitigations the policy no longer declares.
for record in "$state_dir"/*; do
  [ -f "$record" ] || continue
  id=${record##*/}
  listed "$id" && continue
  read -r action argument <"$record" || :
  if [ "$mode" = verify ]; then
    problem "$id: no longer declared but $action $argument is still applied"
  else
    revert "$id" "$action" "$argument" "no longer declared" || failed=1
  fi
done

if [ "$mode" = verify ]; then
  [ "$problems" -eq 0 ] || exit 2
  echo "mitigations: every mitigation in effect, every reverted one gone"
  exit 0
fi

if command -v nft >/dev/null; then
  # The table is rebuilt on every run, so a reverted port is open again.
  nft -f - <<NFT
table inet upkeep_mitigations
delete table inet upkeep_mitigations
table inet upkeep_mitigations {
  chain input {
    type filter hook input priority -10; policy accept;
    $firewall_rules
  }
}
NFT
elif [ -n "$firewall_rules" ]; then
  echo "mitigations: nft is missing; cannot close ports" >&2
  exit 1
fi
if [ $reload = yes ]; then systemctl daemon-reload; fi
exit "$failed"
