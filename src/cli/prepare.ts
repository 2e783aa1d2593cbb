/**
 * `fdstore prepare`: the init container of the chart's classic mode (Kubernetes < 1.29,
 * no native sidecars). Before any app container starts it creates each DIR/NAME as the
 * agent's uid (the kubelet would otherwise create a subPath directory root-owned, which
 * the agent refuses) and puts the launcher in it, so the app's command can be
 * `DIR/fdstore-exec -- CMD` with no wait loop and no shell in the app image: the
 * launcher itself waits for the agent's restore socket (`--wait-ms`). The agent
 * replaces the launcher by rename when it starts. Binds no socket and takes no lock:
 * the agent finds a first start (no sockets), as without this step.
 */
import { closeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { installLauncher } from '../agent/install.js';
import { openOwnDir, openRunDir } from '../agent/rundir.js';
import { checkContainerName } from '../config/validate.js';
import { containerDir } from '../unit/layout.js';
import { PREPARE_HELP } from './usage.js';

const EXIT_USAGE = 2;
const EXIT_FAIL = 1;
/** As the agent makes it: apps of any uid reach the sockets, only the agent writes. */
const CONTAINER_DIR_MODE = 0o755;

export function runPrepare(argv: string[], uid = process.getuid?.() ?? 0): number {
  let runDir: string;
  let names: string[];
  try {
    const { values } = parseArgs({
      args: argv,
      options: { 'run-dir': { type: 'string' }, container: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(PREPARE_HELP);
      return 0;
    }
    if (values['run-dir'] === undefined || (values.container ?? []).length === 0) throw new Error('--run-dir and at least one --container are required');
    runDir = values['run-dir'];
    names = values.container!;
    for (const n of names) checkContainerName(n);
  } catch (e) {
    process.stderr.write(`fdstore prepare: ${(e as Error).message}\n\n${PREPARE_HELP}`);
    return EXIT_USAGE;
  }
  try {
    const top = openRunDir(runDir, uid);
    try {
      for (const name of names) {
        const fd = openOwnDir(top.fd, runDir, name, uid, CONTAINER_DIR_MODE);
        try {
          installLauncher(fd, containerDir(runDir, name));
        } finally {
          closeSync(fd);
        }
      }
    } finally {
      closeSync(top.fd);
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    process.stderr.write(`fdstore prepare: ${(e as Error).message}\n`);
    return code === 'ERUNDIR' ? EXIT_USAGE : EXIT_FAIL;
  }
  process.stdout.write(`prepared ${names.map((n) => containerDir(runDir, n)).join(' ')}\n`);
  return 0;
}
