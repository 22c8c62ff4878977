#!/bin/sh
# Reboots the host when its policy asks for it, only inside the maintenance window, and at most
# once per window opening (so "always" and a reboot flag that survives a reboot cannot loop), and
# only after that window's routine updates (which may bring the reason to reboot) have run.
# A reboot that becomes pending outside the window waits for the next opening.
#
# Reads /etc/upkeep/updates.env (UPKEEP_PACKAGE_FAMILY, UPKEEP_REBOOT: never|when-needed|always).
#
# A member of a reboot set (/etc/upkeep/reboot-set.env: a redundant set such as both nameservers)
# also waits for its own slot of the window and begins a reboot only in the slot's first half; and
# only while every other member answers on its port and says it is ready (every one of its own
# checks passed since it last booted: reboot-ready.sh, served on the peer's readiness port). A peer
# that does not answer (down, still booting, or not serving) or is not ready makes it carry the
# reboot over: it looks again on the next tick of its timer, up to the middle of its slot, and
# otherwise in its next slot. A peer whose host key the policy pins must sign its answer with it
# (reboot-set-signers), over a nonce of this run: an impostor at its address cannot answer for it.
# A provisioned peer (no address in reboot-set.env) is asked at the address, and must sign with
# the host key, that bin/apply pinned here ($state_dir/peers/addresses and signers); before they
# are pinned it is not asked, and the reboot carries over.
# Why slots and a probe rather than a lock held on another host: the hosts reboot from their own
# timers when no pipeline runs, and a lock would need ssh keys from host to host and a lock holder
# that can itself be down; here each host decides alone from its clock and what its peers serve
# (and each only signs what it says, with the key it has anyway). Disjoint slots keep two
# members from deciding at the same moment; the half-slot margin lets the member before have gone
# down (so the probe fails) or come back serving before the next one probes.
set -eu

runtime_dir=$(dirname "$0")
config_dir=${UPKEEP_CONFIG_DIR:-/etc/upkeep}
state_dir=${UPKEEP_STATE_DIR:-/var/lib/upkeep}
# shellcheck source=/dev/null
. "$config_dir/updates.env"

rc=0
opening=$("$runtime_dir/in-window.sh" "$config_dir/window.env") || rc=$?
case $rc in
  0) ;;
  1)
    echo "reboot: outside the maintenance window; any pending reboot waits for the next opening"
    exit 0
    ;;
  *) exit "$rc" ;;
esac

if [ "$(cat "$state_dir/routine-last-opening" 2>/dev/null)" != "$opening" ]; then
  echo "reboot: waiting for the routine updates of the window that opened $opening"
  exit 0
fi

last="$state_dir/reboot-last-opening"
if [ -f "$last" ] && [ "$(cat "$last")" = "$opening" ]; then
  echo "reboot: already rebooted in the window that opened $opening"
  exit 0
fi

reboot_required() {
  case $UPKEEP_PACKAGE_FAMILY in
    apt) [ -f /var/run/reboot-required ] ;;
    # needs-restarting -r exits 1 when a reboot is needed.
    dnf) ! needs-restarting -r >/dev/null ;;
    *) echo "reboot: unknown package family: $UPKEEP_PACKAGE_FAMILY" >&2; exit 2 ;;
  esac
}

case $UPKEEP_REBOOT in
  never) exit 0 ;;
  always) ;;
  when-needed) reboot_required || { echo "reboot: no reboot required"; exit 0; } ;;
  *) echo "reboot: unknown reboot policy: $UPKEEP_REBOOT" >&2; exit 2 ;;
esac

if [ -r "$config_dir/reboot-set.env" ]; then
  # shellcheck source=/dev/null
  . "$config_dir/reboot-set.env"
  now=${UPKEEP_NOW:-$(date +%s)}
  # Inside the slot when the window (of the same opening) was already open at the slot's start and
  # not yet at its begin-by mark; in-window.sh answers both on the window's own wall clock.
  started=$(UPKEEP_NOW=$((now - UPKEEP_REBOOT_SLOT_START)) "$runtime_dir/in-window.sh" "$config_dir/window.env" 2>/dev/null) || started=
  late=$(UPKEEP_NOW=$((now - UPKEEP_REBOOT_SLOT_BEGIN_BY)) "$runtime_dir/in-window.sh" "$config_dir/window.env" 2>/dev/null) || late=
  if [ "$started" != "$opening" ] || [ "$late" = "$opening" ]; then
    echo "reboot: outside this host's slot in reboot set $UPKEEP_REBOOT_SET (it begins reboots from $UPKEEP_REBOOT_SLOT_START s to $UPKEEP_REBOOT_SLOT_BEGIN_BY s into the window)"
    exit 0
  fi
  signers=$config_dir/reboot-set-signers
  pins=$state_dir/peers
  reply=$(mktemp)
  trap 'rm -f "$reply" "$reply.err" "$reply.sig"' EXIT
  for peer in $UPKEEP_REBOOT_PEERS; do
    name=${peer%%,*}
    rest=${peer#*,}
    address=${rest%%,*}
    rest=${rest#*,}
    port=${rest%,*}
    ready_port=${rest#*,}
    verify_with=
    if [ -z "$address" ]; then
      address=$(sed -n "s/^$name \([0-9A-Fa-f.:]*\)\$/\1/p" "$pins/addresses" 2>/dev/null | head -n 1)
      if [ -z "$address" ] || ! grep -q "^$name " "$pins/signers" 2>/dev/null; then
        echo "reboot: peer $name of reboot set $UPKEEP_REBOOT_SET is provisioned, and bin/apply has not pinned its address and host key on this host ($pins); the reboot carries over"
        exit 0
      fi
      verify_with=$pins/signers
    elif grep -q "^$name " "$signers" 2>/dev/null; then
      verify_with=$signers
    fi
    # shellcheck disable=SC2016 # $1 and $2 are bash's, not ours.
    if ! timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$address" "$port" 2>/dev/null; then
      echo "reboot: peer $name of reboot set $UPKEEP_REBOOT_SET does not answer on $address port $port; the reboot carries over"
      exit 0
    fi
    # Serving is not enough: a peer that came back from its own reboot must also have passed
    # every one of its checks since (its reboot-ready.sh, served on the readiness port), and say
    # so over a nonce of this run, signed with its pinned host key when the policy pins one.
    nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    case $address in *:*) url="http://[$address]:$ready_port/?nonce=$nonce" ;; *) url="http://$address:$ready_port/?nonce=$nonce" ;; esac
    status=$(curl -sS --max-time 10 -o "$reply" -w '%{http_code}' "$url" 2>"$reply.err") || status=
    if [ "$status" != 200 ]; then
      why=$(head -n 1 "$reply" 2>/dev/null)
      [ -n "$why" ] || why="no answer on port $ready_port: $(head -n 1 "$reply.err" 2>/dev/null)"
      echo "reboot: peer $name of reboot set $UPKEEP_REBOOT_SET is not ready ($why); the reboot carries over"
      exit 0
    fi
    if [ -n "$verify_with" ]; then
      sed -n '/^-----BEGIN SSH SIGNATURE-----$/,/^-----END SSH SIGNATURE-----$/p' "$reply" >"$reply.sig"
      if ! printf 'upkeep reboot readiness\nset %s\nmember %s\nnonce %s\nstatus 200\n' "$UPKEEP_REBOOT_SET" "$name" "$nonce" |
        ssh-keygen -Y verify -f "$verify_with" -I "$name" -n upkeep-reboot-ready -s "$reply.sig" >/dev/null 2>&1; then
        echo "reboot: peer $name of reboot set $UPKEEP_REBOOT_SET says it is ready, but not signed with its pinned host key over this run's nonce (an impostor at $address, or a peer on an older generation); the reboot carries over"
        exit 0
      fi
    fi
  done
fi

mkdir -p "$state_dir"
echo "$opening" >"$last"
echo "reboot: rebooting in the window that opened $opening"
systemctl reboot
