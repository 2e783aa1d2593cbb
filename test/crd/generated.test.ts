// crds/*.yaml are generated (npm run gen:crds): the committed files must be exactly the generator's output.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { crdFiles } from '../../src/crd/render.js';

const root = join(import.meta.dirname, '..', '..');

describe('crds/ is generated', () => {
  it.each(crdFiles().map((f) => [f.path, f] as const))('%s equals the generator output byte for byte', (_path, f) => {
    expect(readFileSync(join(root, f.path), 'utf8')).toBe(f.text);
  });

  it('crds/ holds no CRD the generator does not write', () => {
    const generated = new Set(crdFiles().map((f) => f.path));
    const present = readdirSync(join(root, 'crds')).filter((n) => n.endsWith('.yaml')).map((n) => `crds/${n}`);
    expect(present.sort()).toEqual([...generated].sort());
  });

  it('the YAML reads back as the object it was rendered from, as YAML 1.1 (kubectl) and as YAML 1.2', () => {
    for (const f of crdFiles()) {
      const want = JSON.parse(JSON.stringify(f.crd));
      expect(parse(f.text, { version: '1.1' })).toEqual(want);
      expect(parse(f.text, { version: '1.2' })).toEqual(want);
    }
  });

  it('under YAML 1.1 the preserve enum stays strings (a bare no would be false)', () => {
    const policy = crdFiles().find((f) => f.crd.spec.names.kind === 'FdStorePolicy')!;
    expect(policy.text).toContain('- "no"');
    expect(policy.text).toContain('- "yes"');
  });
});
