/** Entry point of the `fdstore` command: dispatch to a subcommand. */
import { runAgent } from './agent.js';
import { runClean, runLs } from './ls.js';
import { runPrepare } from './prepare.js';
import { MAIN_HELP } from './usage.js';
import { packageVersion } from '../metrics/version.js';

export const EXIT_USAGE = 2;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'agent':
      return runAgent(rest);
    case 'ls':
      return runLs(rest);
    case 'clean':
      return runClean(rest);
    case 'prepare':
      return runPrepare(rest);
    case 'operator':
      // Lazy: the agent must never load the operator's Kubernetes client.
      return (await import('./operator.js')).runOperator(rest);
    case '-V':
    case '--version':
      process.stdout.write(`fdstore ${packageVersion()}\n`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(MAIN_HELP);
      return cmd === undefined ? EXIT_USAGE : 0;
    default:
      process.stderr.write(`fdstore: unknown command ${JSON.stringify(cmd)}\n\n${MAIN_HELP}`);
      return EXIT_USAGE;
  }
}
