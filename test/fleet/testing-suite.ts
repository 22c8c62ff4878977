// Debian testing, the stand-in for a rolling-release distribution on test hosts: the suite the
// machine's own Debian mirror (apt-mirror.ts) serves as "testing", by the codename its Release
// file gives (forky while trixie is stable). Read at run time, so the test follows testing as it
// moves on and the image cache key changes with the codename.
import { testbedMirror } from './apt-mirror.ts';
import { UPDATE_HOST_PACKAGES, type ImageSuite } from './base-image.ts';

/** The Debian suite that is always the next release: no security archive of its own. */
export const ROLLING_SUITE = 'testing';

export interface TestingSuite extends ImageSuite {
  /** The suite name in the archive: "testing". */
  readonly suite: typeof ROLLING_SUITE;
}

/** How long the mirror may take to answer for its Release file. */
const RELEASE_TIMEOUT_MS = 30_000;
const CODENAME = /^[a-z][a-z0-9-]*$/;

/** The Suite and Codename fields of a Release file; undefined for a field that is missing. */
export function releaseSuite(text: string): { suite?: string; codename?: string } {
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*(\\S+)[ \\t]*$`, 'm').exec(text)?.[1];
  const suite = field('Suite');
  const codename = field('Codename');
  return { ...(suite === undefined ? {} : { suite }), ...(codename === undefined ? {} : { codename }) };
}

/**
 * Debian testing from `mirror` as an image suite (UPDATE_HOST_PACKAGES, debootstrap's "sid"
 * script, which serves testing whatever its codename), or why it cannot be had there.
 */
export async function debianTesting(mirror?: string): Promise<{ readonly ok: true; readonly suite: TestingSuite } | { readonly ok: false; readonly reason: string }> {
  let url: string;
  try {
    url = `${mirror ?? testbedMirror()}/dists/${ROLLING_SUITE}/Release`;
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  let text: string;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(RELEASE_TIMEOUT_MS) });
    if (!response.ok) return { ok: false, reason: `the Debian mirror serves no ${ROLLING_SUITE} suite: ${url} answered HTTP ${response.status}` };
    text = await response.text();
  } catch (error) {
    return { ok: false, reason: `cannot read ${url}: ${(error as Error).message}` };
  }
  const { suite, codename } = releaseSuite(text);
  if (suite !== ROLLING_SUITE || codename === undefined || !CODENAME.test(codename)) {
    return { ok: false, reason: `${url} is not Debian testing's Release file (Suite ${suite ?? 'missing'}, Codename ${codename ?? 'missing'})` };
  }
  return { ok: true, suite: { suite: ROLLING_SUITE, codename, packages: UPDATE_HOST_PACKAGES, script: 'sid' } };
}
