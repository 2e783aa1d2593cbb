/**
 * Global setup of the kube tests (vitest.kube.config.ts): makes sure the project's one-node
 * Kubernetes 1.20 cluster is built (scripts/kube/setup.sh: minutes cold, under a second warm) and
 * running (scripts/kube/up.sh: reuses a healthy cluster at once; several runs and people share it),
 * then hands its KEY=VALUE lines (KUBECONFIG, KUBECTL, HELM, FDSTORE_KUBE_*) to the tests through
 * process.env, which the test workers inherit.
 *
 * The cluster is left running: it is shared, and `scripts/kube/down.sh` is whoever owns the
 * machine's call (.ci/run does it when it started the cluster itself).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
/** A cold setup.sh builds five Go binaries and an image: minutes on two busy cores. */
const SETUP_TIMEOUT_MS = 45 * 60_000;
/** up.sh waits for the node itself (120 s by default); this only guards against a hang. */
const UP_TIMEOUT_MS = 10 * 60_000;

function run(script: string, timeoutMs: number): Promise<string> {
  return new Promise((done, fail) => {
    const p = execFile('bash', [join(ROOT, 'scripts', 'kube', script)], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (err, stdout) => (err ? fail(new Error(`scripts/kube/${script} failed: ${err.message}`)) : done(stdout)));
    // its progress (and on failure its diagnosis) goes to our stderr as it happens
    p.stderr?.pipe(process.stderr);
  });
}

export function parseEnvLines(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

export default async function setup(): Promise<void> {
  await run('setup.sh', SETUP_TIMEOUT_MS);
  const env = parseEnvLines(await run('up.sh', UP_TIMEOUT_MS));
  for (const k of ['KUBECONFIG', 'KUBECTL', 'HELM', 'FDSTORE_KUBE_NODE_IMAGE', 'FDSTORE_KUBE_CTR_SOCK']) {
    if (!env[k]) throw new Error(`scripts/kube/up.sh printed no ${k}`);
  }
  Object.assign(process.env, env);
}
