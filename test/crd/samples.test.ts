// The sample objects in crds/samples/ against the CRDs' own schemas (ajv, as the API
// server checks them), the policy samples through the agent's validator too, and a
// table of invalid objects each refused for its own reason.
import { describe, expect, it } from 'vitest';
import { containerFromRaw } from '../../src/config/validate.js';
import { DEFAULTS } from '../../src/config/types.js';
import { CONTAINER_STATUS_SCHEMA } from '../../src/crd/container-status.js';
import { fdStoreCrd } from '../../src/crd/fdstore.js';
import { fdStorePolicyCrd } from '../../src/crd/policy.js';
import { fdStoreCases, policyCases, sample, samples, type Obj } from './cases.js';
import { crdValidator } from './schema-check.js';


const strict = { FdStorePolicy: crdValidator(fdStorePolicyCrd(), true), FdStore: crdValidator(fdStoreCrd(), true) };
const lax = { FdStorePolicy: crdValidator(fdStorePolicyCrd(), false), FdStore: crdValidator(fdStoreCrd(), false) };

function errorsOf(obj: Obj, strictMode = true): string[] {
  const v = (strictMode ? strict : lax)[obj.kind as 'FdStore' | 'FdStorePolicy'];
  return v(obj) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`);
}

describe('crds/samples', () => {
  it('holds a full policy, a minimal one and an FdStore', () => {
    expect(samples.map(([n]) => n)).toEqual(['fdstore.yaml', 'fdstorepolicy-minimal.yaml', 'fdstorepolicy-web.yaml']);
  });

  it.each(samples)('%s validates against its CRD, strictly (no unknown field anywhere)', (_n, obj) => {
    expect(obj.apiVersion).toBe('fdstore.dev/v1alpha1');
    expect(errorsOf(obj)).toEqual([]);
  });

  it('the policy samples are accepted by the agent validator as well', () => {
    for (const name of ['fdstorepolicy-web.yaml', 'fdstorepolicy-minimal.yaml']) {
      const spec = sample(name).spec;
      const base = containerFromRaw({ name: 'any', ...(spec.defaults ?? {}) }, DEFAULTS, `${name} defaults`);
      for (const c of spec.containers ?? []) expect(() => containerFromRaw(c, base, `${name} ${c.name}`)).not.toThrow();
    }
    const web = sample('fdstorepolicy-web.yaml').spec;
    const base = containerFromRaw({ name: 'app', ...web.defaults }, DEFAULTS, 'defaults');
    expect(containerFromRaw(web.containers[0], base, 'app')).toMatchObject({ watchdogSec: 30, timeoutStartSec: 120, releaseAfterSec: 600 });
  });

  it('the FdStore sample has every field of the agent status per container (status/types.ts ContainerState)', () => {
    const fields = Object.keys(CONTAINER_STATUS_SCHEMA.properties!).sort();
    const containers: Obj[] = sample('fdstore.yaml').status.containers;
    expect([...new Set(containers.flatMap((c) => Object.keys(c)))].sort()).toEqual(fields);
    // Only the agent's nulls (no restore yet, no ERRNO=) are absent, as the API server leaves them.
    expect(containers.map((c) => fields.filter((f) => !(f in c)))).toEqual([['errno'], ['lastRestore']]);
  });

  it('a null the agent sends is refused by the schema as it stands: the API server prunes it before validating', () => {
    const o = sample('fdstore.yaml');
    o.status.containers[1].errno = null;
    expect(errorsOf(o)).toContain('/status/containers/1/errno type');
    const app = sample('fdstore.yaml');
    app.status.containers[0].errno = 111;
    expect(errorsOf(app)).toEqual([]);
  });
});

describe('invalid FdStorePolicy objects are refused, each for its reason', () => {
  it.each(policyCases)('%s', (_what, mutate, expected) => {
    const o = sample('fdstorepolicy-web.yaml');
    mutate(o);
    expect(errorsOf(o)).toContain(expected);
  });

  it('1.20 drops unknown fields instead (no strict field validation before 1.25): the lax check accepts them', () => {
    const o = sample('fdstorepolicy-web.yaml');
    o.spec.defaults.watchdogsec = 5;
    expect(errorsOf(o, false)).toEqual([]);
  });
});

describe('invalid FdStore objects are refused', () => {
  it.each(fdStoreCases)('%s', (_what, mutate, expected) => {
    const o = sample('fdstore.yaml');
    mutate(o);
    expect(errorsOf(o)).toContain(expected);
  });
});
