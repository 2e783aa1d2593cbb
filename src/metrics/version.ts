/** The package version for fdstore_build_info, read once from package.json. */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  try {
    // src/metrics/ and dist/metrics/ are both two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
