// reboot-set.env: a member's slot of the window and the peers that must answer before it reboots,
// for lib/runtime/reboot.sh. Peers are written "host,address,port", separated by spaces.

import type { ResolvedRebootSetMember, ResolvedWindow } from '../policy/resolved.ts';
import { rebootSlot } from '../policy/reboot-slot.ts';
import { renderEnvFile } from './env-file.ts';
import { checked } from './host-word.ts';

/** A host name, an IPv4 or an IPv6 address: nothing a shell or bash's /dev/tcp would read otherwise. */
const PEER_ADDRESS = /^[A-Za-z0-9][A-Za-z0-9.:-]*$/;
const HOST_NAME = /^[a-z0-9][a-z0-9-]*$/;

export function rebootSetEnv(window: ResolvedWindow, member: ResolvedRebootSetMember): string {
  const slot = rebootSlot(window.durationSeconds, member.index, member.count);
  const peers = member.peers.map((p) => `${checked(p.host, HOST_NAME, 'reboot set peer')},${checked(p.address, PEER_ADDRESS, 'reboot set peer address')},${p.port}`);
  return renderEnvFile(`Reboot set "${member.set}": slot ${member.index + 1} of ${member.count}, for reboot.sh.`, {
    UPKEEP_REBOOT_SET: checked(member.set, HOST_NAME, 'reboot set'),
    UPKEEP_REBOOT_SLOT_START: slot.startSeconds,
    UPKEEP_REBOOT_SLOT_BEGIN_BY: slot.beginBySeconds,
    UPKEEP_REBOOT_PEERS: peers.join(' '),
  });
}
