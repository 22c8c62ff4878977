// Each test host gets cgroups of its own. With --keep-unit (no systemd on the machine to ask for
// a unit) systemd-nspawn puts the container into the cgroup of whoever started it, so containers
// started by one test process would share one cgroup tree: their systemds then create and remove
// the same system.slice/*.service cgroups under each other, and units fail at random with
// status=219/CGROUP. Starting systemd-nspawn inside a fresh cgroup per host keeps them apart.
import { mkdirSync, readFileSync, readdirSync, rmdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

interface Hierarchy {
  readonly mountPoint: string;
  /** This process's cgroup in the hierarchy, e.g. "/" or "/user.slice/session-1.scope". */
  readonly path: string;
}

/** The hierarchies systemd-nspawn places a container in: the named systemd one (cgroup v1) and cgroup v2. */
function hierarchies(): Hierarchy[] {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((line) => line.split(' '));
  const v2Mount = mounts.find((fields) => fields[2] === 'cgroup2')?.[1];
  const systemdMount = mounts.find((fields) => fields[2] === 'cgroup' && fields[3]?.split(',').includes('name=systemd'))?.[1];
  const found: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [id, controllers, ...path] = line.split(':');
    const cgroupPath = path.join(':');
    if (controllers === 'name=systemd' && systemdMount) found.push({ mountPoint: systemdMount, path: cgroupPath });
    if (id === '0' && controllers === '' && v2Mount) found.push({ mountPoint: v2Mount, path: cgroupPath });
  }
  return found;
}

/** Removes a cgroup and the ones the container's systemd made inside it, deepest first. False if one is still in use. */
function removeCgroupTree(dir: string): boolean {
  if (!existsSync(dir)) return true;
  let removedAll = true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removedAll = removeCgroupTree(join(dir, entry.name)) && removedAll;
  }
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw error;
  }
}

/**
 * Removes a host's cgroups. A container killed a moment ago may still have processes on their way
 * out, so keep trying for a few seconds (synchronously: this also runs in the process exit hook).
 */
function removeCgroupTreeSoon(dir: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; attempt < 60 && !removeCgroupTree(dir); attempt++) Atomics.wait(pause, 0, 0, 50);
}

/** The cgroup directories (one per hierarchy) a host named machine runs in; not created yet. */
export function hostCgroups(machine: string): string[] {
  return hierarchies().map((h) => join(h.mountPoint, h.path, `upkeep-testbed-${machine}`));
}

/** Creates fresh cgroups for a host, removing what a previous boot of the same host left. */
export function createHostCgroups(machine: string): string[] {
  const dirs = hostCgroups(machine);
  for (const dir of dirs) {
    removeCgroupTreeSoon(dir);
    mkdirSync(dir, { recursive: true });
  }
  return dirs;
}

export function removeHostCgroups(dirs: readonly string[]): void {
  for (const dir of dirs) removeCgroupTreeSoon(dir);
}
