/**
 * Invalid objects for the CRD checks (samples.test.ts with ajv, test/kube/crd-apiserver.test.ts
 * against a real API server): a mutation of a sample each, and the error ajv reports.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const dir = join(import.meta.dirname, '..', '..', 'crds', 'samples');
export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const samples: [string, Obj][] = readdirSync(dir)
  .filter((n) => n.endsWith('.yaml'))
  .sort()
  .map((n) => [n, parse(readFileSync(join(dir, n), 'utf8')) as Obj]);
export const sample = (name: string): Obj => structuredClone(samples.find(([n]) => n === name)![1]);

export type Mutation = [string, (o: Obj) => void, string];

export const policyCases: Mutation[] = [
  ['a notifyAccess outside the enum', (o) => (o.spec.defaults.notifyAccess = 'sometimes'), '/spec/defaults/notifyAccess enum'],
  ['a negative fileDescriptorStoreMax', (o) => (o.spec.defaults.fileDescriptorStoreMax = -1), '/spec/defaults/fileDescriptorStoreMax minimum'],
  ['a fileDescriptorStoreMax above 2^30', (o) => (o.spec.defaults.fileDescriptorStoreMax = 2 ** 30 + 1), '/spec/defaults/fileDescriptorStoreMax maximum'],
  ['a bad time span', (o) => (o.spec.containers[0].watchdogSec = '5 parsecs'), '/spec/containers/0/watchdogSec pattern'],
  ['a negative number of seconds', (o) => (o.spec.containers[0].watchdogSec = -5), '/spec/containers/0/watchdogSec minimum'],
  ['a fractional number (int-or-string)', (o) => (o.spec.defaults.timeoutStartSec = 2.5), '/spec/defaults/timeoutStartSec type'],
  ['a time span over 64 characters', (o) => (o.spec.defaults.timeoutStartSec = '1s '.repeat(22)), '/spec/defaults/timeoutStartSec maxLength'],
  ['preserve: no unquoted (a YAML 1.1 boolean)', (o) => (o.spec.containers[1].preserve = false), '/spec/containers/1/preserve type'],
  ['an unknown settings field (strict)', (o) => (o.spec.defaults.watchdogsec = 5), '/spec/defaults additionalProperties'],
  ['a name in defaults (strict)', (o) => (o.spec.defaults.name = 'app'), '/spec/defaults additionalProperties'],
  ['two entries for one container', (o) => o.spec.containers.push({ name: 'app' }), '/spec/containers x-kubernetes-list-map-keys'],
  ['a container name that is not a DNS label', (o) => (o.spec.containers[0].name = 'App_1'), '/spec/containers/0/name pattern'],
  ['a container entry without name', (o) => delete o.spec.containers[1].name, '/spec/containers/1 required'],
  ['a tcp listen on a path', (o) => (o.spec.containers[0].listen[0].address = '/run/x.sock'), '/spec/containers/0/listen/0 anyOf'],
  ['a listen without kind on a path (tcp by default)', (o) => (o.spec.containers[0].listen[0] = { name: 'h', address: '/x' }), '/spec/containers/0/listen/0 anyOf'],
  ['a unix listen on an IP address', (o) => (o.spec.containers[0].listen[1].address = '0.0.0.0:80'), '/spec/containers/0/listen/1 anyOf'],
  ['a tcp port over 65535', (o) => (o.spec.containers[0].listen[0].address = '0.0.0.0:65536'), '/spec/containers/0/listen/0 anyOf'],
  ['a host name for tcp', (o) => (o.spec.containers[0].listen[0].address = 'localhost:80'), '/spec/containers/0/listen/0 anyOf'],
  ['a listen without address', (o) => delete o.spec.containers[0].listen[0].address, '/spec/containers/0/listen/0 required'],
  ["a listen name with ':'", (o) => (o.spec.containers[0].listen[0].name = 'a:b'), '/spec/containers/0/listen/0/name pattern'],
  ['a listen backlog of 0', (o) => (o.spec.containers[0].listen[0].backlog = 0), '/spec/containers/0/listen/0/backlog minimum'],
  ['65 listen sockets', (o) => (o.spec.containers[0].listen = Array.from({ length: 65 }, (_, i) => ({ name: `l${i}`, address: `0.0.0.0:${i + 1}` }))), '/spec/containers/0/listen maxItems'],
  ['no selector', (o) => delete o.spec.selector, '/spec required'],
  ['In without values', (o) => delete o.spec.selector.matchExpressions[0].values, '/spec/selector/matchExpressions/0 anyOf'],
  ['Exists with values', (o) => (o.spec.selector.matchExpressions[0].operator = 'Exists'), '/spec/selector/matchExpressions/0 anyOf'],
  ['an unknown operator', (o) => (o.spec.selector.matchExpressions[0].operator = 'Matches'), '/spec/selector/matchExpressions/0/operator enum'],
  ['a label value with a space', (o) => (o.spec.selector.matchLabels.app = 'my app'), '/spec/selector/matchLabels/app pattern'],
  ['a policy name that is not a DNS label', (o) => (o.metadata.name = 'Web.1'), '/metadata/name pattern'],
  ['a priority beyond int32', (o) => (o.spec.priority = 2 ** 31), '/spec/priority maximum'],
  ['a priority below int32', (o) => (o.spec.priority = -(2 ** 31) - 1), '/spec/priority minimum'],
  ['a priority as text', (o) => (o.spec.priority = 'high'), '/spec/priority type'],
  ['injection.enabled as text', (o) => (o.spec.injection.enabled = 'yes'), '/spec/injection/enabled type'],
  ['51 conflicts in status', (o) => (o.status = { conflicts: Array.from({ length: 51 }, (_, i) => ({ pod: `p${i}`, winner: 'a' })) }), '/status/conflicts maxItems'],
  ['a condition status outside True/False/Unknown', (o) => (o.status = { conditions: [{ type: 'Accepted', status: 'Yes', reason: 'Ok', message: 'm', lastTransitionTime: '2025-01-01T00:00:00Z' }] }), '/status/conditions/0/status enum'],
  ['a condition without reason', (o) => (o.status = { conditions: [{ type: 'Accepted', status: 'True', message: 'm', lastTransitionTime: '2025-01-01T00:00:00Z' }] }), '/status/conditions/0 required'],
  ['a condition time that is not RFC 3339', (o) => (o.status = { conditions: [{ type: 'Accepted', status: 'True', reason: 'Ok', message: 'm', lastTransitionTime: 'yesterday' }] }), '/status/conditions/0/lastTransitionTime format'],
  ['two conditions of one type', (o) => (o.status = { conditions: [1, 2].map(() => ({ type: 'Accepted', status: 'True', reason: 'Ok', message: 'm', lastTransitionTime: '2025-01-01T00:00:00Z' })) }), '/status/conditions x-kubernetes-list-map-keys'],
];

export const fdStoreCases: Mutation[] = [
  ['17 fd groups', (o) => (o.status.containers[0].fdGroups = Array.from({ length: 17 }, (_, i) => ({ name: `g${i}`, type: 'tcp', count: 1 }))), '/status/containers/0/fdGroups maxItems'],
  ['a STATUS= text over 256 characters', (o) => (o.status.containers[0].status = 'x'.repeat(257)), '/status/containers/0/status maxLength'],
  ['an errno over 4095', (o) => (o.status.containers[1].errno = 4096), '/status/containers/1/errno maximum'],
  ['a readySummary that is not N/M', (o) => (o.status.readySummary = 'one of two'), '/status/readySummary pattern'],
  ['a null where the agent never sends one', (o) => (o.status.containers[0].stored = null), '/status/containers/0/stored type'],
  ['a config hash that is not sha256 hex', (o) => (o.status.config.hash = 'abc'), '/status/config/hash pattern'],
  ['an unknown container field (strict)', (o) => (o.status.containers[0].pid = 42), '/status/containers/0 additionalProperties'],
  ['two status entries for one container', (o) => o.status.containers.push({ name: 'app' }), '/status/containers x-kubernetes-list-map-keys'],
  ['a spec (FdStore has none; strict)', (o) => (o.spec = { pod: 'x' }), ' additionalProperties'],
  ['an FdStore name that is not a pod name', (o) => (o.metadata.name = 'Web_1'), '/metadata/name pattern'],
];

