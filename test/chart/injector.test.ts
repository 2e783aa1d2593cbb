// The injector's objects: the MutatingWebhookConfiguration (Ignore, IfNeeded, None,
// short timeout, selectors that keep kube-system and the operator out), the Service
// port, and TLS in both modes: the chart's own certificate (caBundle is the CA that
// signed the serving certificate, for the Service's DNS names) and cert-manager's
// (Certificate for the same Secret, CA injection by annotation, no caBundle).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { expectValid } from './check.js';
import { byKind, kinds, one, render, type Obj } from './helm.js';

const webhookOf = (objs: Obj[]): Obj => one(objs, 'MutatingWebhookConfiguration').webhooks[0];
const operatorPod = (objs: Obj[]): Obj => one(objs, 'Deployment', '-operator').spec.template;
const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

describe.each(['1.20.0', '1.30.0'])('Kubernetes %s, defaults', (kube) => {
  const objs = render({ kube });
  const wh = webhookOf(objs);
  const secret = one(objs, 'Secret');

  it('the webhook: pods CREATE, Ignore, IfNeeded, sideEffects None, 5 s, the Service on 443 at /inject', () => {
    expect(wh).toMatchObject({
      name: 'inject.fdstore.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Ignore', timeoutSeconds: 5, reinvocationPolicy: 'IfNeeded',
      clientConfig: { service: { name: 'rel-fdstore-operator', namespace: 'fds-system', path: '/inject', port: 443 } },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    });
    const svc = one(objs, 'Service', '-operator');
    expect(svc.spec.ports).toContainEqual({ name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' });
    expectValid(objs);
  });

  it('selectors: namespaces labelled fdstore.dev/injection=disabled and the system ones out; pods labelled fdstore.dev/inject=false out, the operator\'s own among them', () => {
    expect(wh.namespaceSelector.matchExpressions).toContainEqual({ key: 'fdstore.dev/injection', operator: 'NotIn', values: ['disabled'] });
    expect(wh.namespaceSelector.matchExpressions).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public', 'kube-node-lease'] });
    expect(wh.objectSelector).toEqual({ matchExpressions: [{ key: 'fdstore.dev/inject', operator: 'NotIn', values: ['false'] }] });
    expect(operatorPod(objs).metadata.labels['fdstore.dev/inject']).toBe('false');
  });

  it('TLS: caBundle is the Secret\'s ca.crt, which signed tls.crt; tls.crt names the Service; the operator mounts that Secret', () => {
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(wh.clientConfig.caBundle).toBe(secret.data['ca.crt']);
    const ca = new X509Certificate(b64(secret.data['ca.crt']));
    const leaf = new X509Certificate(b64(secret.data['tls.crt']));
    expect(ca.ca).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkHost('rel-fdstore-operator.fds-system.svc')).toBe('rel-fdstore-operator.fds-system.svc');
    expect(leaf.checkPrivateKey(createPrivateKey(b64(secret.data['tls.key'])))).toBe(true);
    expect(Date.parse(leaf.validTo) - Date.now()).toBeGreaterThan(3000 * 86400_000);
    const pod = operatorPod(objs).spec;
    expect(pod.volumes).toEqual([{ name: 'webhook-tls', secret: { secretName: secret.metadata.name } }]);
    expect(pod.containers[0].volumeMounts).toEqual([{ name: 'webhook-tls', mountPath: '/etc/fdstore/webhook', readOnly: true }]);
  });
});

describe('certManager.enabled', () => {
  const objs = render({ values: { injector: { certManager: { enabled: true } } } });
  const wh = webhookOf(objs);

  it('a CA of the release\'s own (self-signed Issuer -> CA Certificate -> CA Issuer) signs a Certificate into the Secret the operator mounts; no chart-made Secret', () => {
    expect(byKind(objs, 'Secret')).toEqual([]);
    const certs = byKind(objs, 'Certificate');
    const issuers = byKind(objs, 'Issuer');
    expect(certs.map((c) => c.metadata.name).sort()).toEqual(['rel-fdstore-webhook-ca', 'rel-fdstore-webhook-tls']);
    expect(issuers.map((i) => Object.keys(i.spec)[0]).sort()).toEqual(['ca', 'selfSigned']);
    const serving = certs.find((c) => c.metadata.name === 'rel-fdstore-webhook-tls')!;
    expect(serving.spec).toMatchObject({ secretName: 'rel-fdstore-webhook-tls', issuerRef: { name: 'rel-fdstore-webhook-ca', kind: 'Issuer' } });
    expect(serving.spec.dnsNames).toContain('rel-fdstore-operator.fds-system.svc');
    expect(operatorPod(objs).spec.volumes[0].secret.secretName).toBe(serving.spec.secretName);
    for (const o of [...certs, ...issuers]) expect([o.apiVersion, o.metadata.namespace]).toEqual(['cert-manager.io/v1', 'fds-system']);
    expectValid(objs.filter((o) => o.apiVersion !== 'cert-manager.io/v1'));
  });

  it('caBundle comes from cert-manager\'s cainjector (inject-ca-from the serving Certificate), none in the render', () => {
    expect(one(objs, 'MutatingWebhookConfiguration').metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': 'fds-system/rel-fdstore-webhook-tls' });
    expect(wh.clientConfig.caBundle).toBeUndefined();
  });

  it('an issuerRef of the user\'s: only the serving Certificate, signed by it', () => {
    const o = render({ values: { injector: { certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' } } } } });
    expect(kinds(o).filter((k) => k === 'Certificate' || k === 'Issuer')).toEqual(['Certificate']);
    expect(one(o, 'Certificate').spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
  });
});

describe('toggles', () => {
  it('injector.enabled=false: no webhook, no Secret, no --webhook, no port, no label', () => {
    const objs = render({ values: { injector: { enabled: false } } });
    expect(kinds(objs).filter((k) => ['MutatingWebhookConfiguration', 'Secret', 'Certificate'].includes(k))).toEqual([]);
    const pod = operatorPod(objs);
    expect(pod.spec.containers[0].args).not.toContain('--webhook');
    expect(pod.spec.volumes).toBeUndefined();
    expect(pod.metadata.labels['fdstore.dev/inject']).toBeUndefined();
    expect(one(objs, 'Service').spec.ports).toHaveLength(1);
  });

  it('operator.enabled=false: no injector either', () => {
    expect(kinds(render({ values: { operator: { enabled: false }, crds: { enabled: false } } }))).toEqual([]);
  });

  it('failurePolicy, timeoutSeconds, mode and port reach the objects; values outside the schema are refused', () => {
    const objs = render({ values: { injector: { failurePolicy: 'Fail', timeoutSeconds: 2, mode: 'classic', port: 10443 } } });
    expect(webhookOf(objs)).toMatchObject({ failurePolicy: 'Fail', timeoutSeconds: 2 });
    const args = operatorPod(objs).spec.containers[0].args as string[];
    expect(args.slice(args.indexOf('--webhook'), args.indexOf('--webhook') + 4)).toEqual(['--webhook', '0.0.0.0:10443', '--inject-mode', 'classic']);
    expect(() => render({ values: { injector: { timeoutSeconds: 31 } } })).toThrow(/timeoutSeconds/);
    expect(() => render({ values: { injector: { failurePolicy: 'Maybe' } } })).toThrow(/failurePolicy/);
  });
});
