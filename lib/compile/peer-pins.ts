// Provisioned peers: the hosts of the fleet that this host reaches, but whose address (and host
// key) the policy cannot give, because they are servers the engine creates. Their addresses come
// from the Terraform outputs and their keys from bin/apply's rotation, so bin/apply pins them on
// this host (lib/apply/peer-pins.ts) in PEER_PIN_DIR, which the runtime programs read:
//   addresses  "HOST ADDRESS" per peer (reboot.sh asks a reboot set peer there; check-monitor-
//              heartbeat.sh reads a monitor's liveness time there),
//   signers    the host keys of reboot set peers, in ssh-keygen's allowed signers format for
//              readiness signatures only (reboot.sh verifies their answers with it).
// PROVISIONED_PEERS, compiled here, tells bin/apply which peers a host needs and what of them:
// lines "HOST address" or "HOST address signer".

import type { ResolvedFleet, ResolvedHost } from '../policy/resolved.ts';
import { CONFIG_DIR, STATE_DIR } from './desired-state.ts';
import { configFile, type HostPart } from './host-part.ts';
import { heartbeatMonitorsOf } from './monitoring.ts';

export const PROVISIONED_PEERS = `${CONFIG_DIR}/provisioned-peers`;
/** Host state, not part of a generation: the addresses and keys exist only once the peers do. */
export const PEER_PIN_DIR = `${STATE_DIR}/peers`;

/** What a host needs of a provisioned peer: where it is, and (a reboot set peer) the key its readiness is signed with. */
export type PeerNeed = 'address' | 'signer';

/** The provisioned peers `host` reaches and what it needs of each, by name. */
export function provisionedPeers(fleet: ResolvedFleet, host: ResolvedHost): Map<string, PeerNeed[]> {
  const needs = new Map<string, Set<PeerNeed>>();
  const need = (peer: string, ...what: PeerNeed[]) => needs.set(peer, new Set([...(needs.get(peer) ?? []), ...what]));
  for (const peer of host.updates?.rebootSet?.peers ?? []) if (peer.provisioned) need(peer.host, 'address', 'signer');
  for (const monitor of heartbeatMonitorsOf(fleet, host)) if (monitor.provision && monitor.name !== host.name) need(monitor.name, 'address');
  return new Map([...needs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([peer, what]) => [peer, [...what].sort()]));
}

/** PROVISIONED_PEERS for a host that has provisioned peers. */
export function compilePeerPins(fleet: ResolvedFleet, host: ResolvedHost): HostPart | undefined {
  const peers = provisionedPeers(fleet, host);
  if (peers.size === 0) return undefined;
  const lines = [...peers].map(([peer, what]) => `${peer} ${what.join(' ')}\n`).join('');
  const header = `# The provisioned hosts this host reaches: bin/apply pins their addresses (and signer keys) in ${PEER_PIN_DIR}.\n`;
  return { files: [configFile(PROVISIONED_PEERS, header + lines)], units: [], packages: [], scripts: [] };
}

const LINE = /^([a-z0-9][a-z0-9-]*) (address(?: signer)?)$/;

/** PROVISIONED_PEERS read back (a planned copy): what each named peer is needed for. */
export function parseProvisionedPeers(text: string): Map<string, PeerNeed[]> {
  const peers = new Map<string, PeerNeed[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`${PROVISIONED_PEERS}: not "HOST address [signer]": ${JSON.stringify(line)}`);
    peers.set(m[1]!, m[2]!.split(' ') as PeerNeed[]);
  }
  return peers;
}
