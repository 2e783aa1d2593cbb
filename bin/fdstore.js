#!/usr/bin/env node
// The installed command. The CLI is compiled TypeScript in dist/ (built by `npm ci`).
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { process.stderr.write(`fdstore: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 1; },
);
