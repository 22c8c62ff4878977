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

/** Removes a cgroup and the ones the container's systemd made inside it, deepest first. */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
  } catch (error) {
    // EBUSY: a process is still in it (a container that is still dying); the next start or the
    // next run's reaper removes it.
    if ((error as NodeJS.ErrnoException).code !== 'EBUSY' && (error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** The cgroup directories (one per hierarchy) a host named machine runs in; not created yet. */
export function hostCgroups(machine: string): string[] {
  return hierarchies().map((h) => join(h.mountPoint, h.path, `upkeep-testbed-${machine}`));
}

/** Creates fresh cgroups for a host, removing what a previous boot of the same host left. */
export function createHostCgroups(machine: string): string[] {
  const dirs = hostCgroups(machine);
  for (const dir of dirs) {
    removeCgroupTree(dir);
    mkdirSync(dir, { recursive: true });
  }
  return dirs;
}

export function removeHostCgroups(dirs: readonly string[]): void {
  for (const dir of dirs) removeCgroupTree(dir);
}
