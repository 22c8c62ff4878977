// Golden files of the compiled examples: per host every file (mode, owner, content), unit and
// package. The runtime programs are the same on every host and have their own tests, so the
// goldens pin them by hash instead of repeating them.

import { describe, it } from 'vitest';
import { join } from 'node:path';
import { RUNTIME_DIR } from '../../lib/compile/desired-state.ts';
import { compileFleet } from '../../lib/compile/fleet.ts';
import { canonicalJson } from '../../lib/compile/canonical-json.ts';
import { sha256 } from '../../lib/compile/generation.ts';
import { loadPolicy } from '../../lib/policy/load.ts';
import { prepareFleet } from '../../lib/policy/prepare.ts';
import { expectGolden } from '../infra/golden.ts';

const root = join(import.meta.dirname, '..', '..');
const examples = { hosting: 'examples/hosting/fleet.ts', 'existing-hosts': 'examples/existing-hosts/fleet.ts', yaml: 'examples/yaml/fleet.yaml' };

describe('the compiled examples', () => {
  for (const [name, file] of Object.entries(examples)) {
    it(`${name}: every host matches its golden file`, { timeout: 60_000 }, async () => {
      const { spec, source } = await loadPolicy(join(root, file));
      const fleet = prepareFleet(spec, source);
      for (const host of compileFleet(fleet).hosts) {
        const files = Object.fromEntries(
          host.files.map((f) => [
            f.path,
            { mode: f.mode, owner: f.owner, ...(f.secret ? { secret: f.secret } : f.path.startsWith(`${RUNTIME_DIR}/`) ? { sha256: sha256(f.content!) } : { content: f.content }) },
          ]),
        );
        expectGolden(`examples/${name}/${host.host}.json`, `${canonicalJson({ units: host.units, packages: host.packages, files }, 2)}\n`);
      }
    });
  }
});
