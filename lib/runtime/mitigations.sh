#!/bin/sh
# Applies each declared mitigation while its fix is missing and reverts it once the installed
# package reaches the fixed version.
#
# Reads /etc/upkeep/mitigations.list: one mitigation per line, fields separated by tabs:
#   id  package  fixed-in (or "-")  action (mask-unit|stop-unit|firewall-port|drop-in)  argument
# firewall-port's argument is "port/protocol"; drop-in's is the target path, its content is
# /etc/upkeep/mitigations/<id>.content. Applied mitigations are remembered in
# /var/lib/upkeep/mitigations/<id> so that only what upkeep did is reverted.
set -eu

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
      drop-in) rm -f "$argument" ;;
      firewall-port) ;;
    esac
    rm -f "$state_dir/$id"
    continue
  fi
  case $action in
    mask-unit) systemctl mask --now "$argument" ;;
    stop-unit) systemctl stop "$argument" ;;
    drop-in)
      mkdir -p "$(dirname "$argument")"
      cp "$config_dir/mitigations/$id.content" "$argument"
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
