#!/bin/sh
# Applies each declared mitigation while its fix is missing and reverts it once the installed
# package reaches the fixed version.
#
# Reads /etc/upkeep/mitigations.list: one mitigation per line, fields separated by tabs:
#   id  package  fixed-in (or "-")  action (mask-unit|stop-unit|firewall-port|drop-in)  argument
# firewall-port's argument is "port/protocol"; drop-in's is the target path, its content is
# /etc/upkeep/mitigations/<id>.content. Applied mitigations are remembered in
# /var/lib/upkeep/mitigations/<id> so that only what upkeep did is reverted.
# A drop-in is written or removed only where no other user can redirect the write (safe-path.sh):
# a mitigation refused for that is reported, the others still apply, and the program exits 1.
set -eu

runtime_dir=$(dirname "$0")
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}/mitigations
# shellcheck source=/dev/null
. "$config_dir/updates.env"
mkdir -p "$state_dir"

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

failed=0
firewall_rules=''
tab=$(printf '\t')
# The list is read from fd 3 so that commands in the loop cannot swallow it from stdin.
while IFS=$tab read -r id package fixed_in action argument <&3; do
  [ -n "$id" ] || continue
  if fixed "$package" "$fixed_in"; then
    [ -f "$state_dir/$id" ] || continue
    echo "mitigations: $id: $package is at $fixed_in or later; reverting $action"
    case $action in
      mask-unit) systemctl unmask "$argument" ;;
      stop-unit) if systemctl -q is-enabled "$argument"; then systemctl start "$argument"; fi ;;
      drop-in)
        if ! { "$runtime_dir/safe-path.sh" "$argument" && rm -f "$argument"; }; then
          echo "mitigations: $id: cannot revert drop-in $argument" >&2
          failed=1
          continue
        fi
        ;;
      firewall-port) ;;
    esac
    rm -f "$state_dir/$id"
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
      ;;
    firewall-port) firewall_rules="$firewall_rules ${argument#*/} dport ${argument%/*} drop;" ;;
    *) echo "mitigations: $id: unknown action $action" >&2; exit 2 ;;
  esac
  [ -f "$state_dir/$id" ] || echo "mitigations: $id: applied $action $argument until $package $fixed_in"
  echo "$action $argument" >"$state_dir/$id"
done 3<"$config_dir/mitigations.list"

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
if grep -q "${tab}drop-in${tab}/etc/systemd/" "$config_dir/mitigations.list"; then systemctl daemon-reload; fi
exit "$failed"
