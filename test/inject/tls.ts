/** A CA and a serving certificate for the webhook tests, made with the real openssl (as the chart's genCA/genSignedCert would). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tls {
  dir: string;
  ca: string;
  certFile: string;
  keyFile: string;
}

/** A CA and a leaf it signs, for the given DNS names and IP addresses; tag keeps several pairs apart in one dir. */
export function makeTls(o: { dns?: string[]; ips?: string[]; dir?: string; tag?: string } = {}): Tls {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'fdstore-tls-'));
  const tag = o.tag ?? 'a';
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', `ca-${tag}.key`, '-out', `ca-${tag}.crt`, '-days', '2', '-subj', `/CN=fdstore-test-ca-${tag}`);
  ssl('req', ...ec, '-keyout', `tls-${tag}.key`, '-out', `tls-${tag}.csr`, '-subj', '/CN=fdstore-webhook');
  const san = [...(o.dns ?? ['localhost']).map((n) => `DNS:${n}`), ...(o.ips ?? ['127.0.0.1']).map((i) => `IP:${i}`)].join(',');
  writeFileSync(join(dir, `ext-${tag}`), `subjectAltName=${san}\n`);
  ssl('x509', '-req', '-in', `tls-${tag}.csr`, '-CA', `ca-${tag}.crt`, '-CAkey', `ca-${tag}.key`, '-CAcreateserial', '-out', `tls-${tag}.crt`, '-days', '2', '-extfile', `ext-${tag}`);
  return { dir, ca: readFileSync(join(dir, `ca-${tag}.crt`), 'utf8'), certFile: join(dir, `tls-${tag}.crt`), keyFile: join(dir, `tls-${tag}.key`) };
}
