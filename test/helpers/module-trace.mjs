// Loaded with `node --import` (NODE_OPTIONS) into a process under test: records the
// URL of every module it resolves, ESM through a resolve hook (module.register) and
// CommonJS through Module._resolveFilename, one per line, to $FDSTORE_MODULE_TRACE.
// test/agent/no-client-node.test.ts reads it to prove what the agent never loads.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const file = process.env.FDSTORE_MODULE_TRACE;
if (file) {
  register('./module-trace-hooks.mjs', import.meta.url, { data: { file } });
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (...args) {
    const path = resolve.apply(this, args);
    if (path.startsWith('/')) appendFileSync(file, `${pathToFileURL(path).href}\n`);
    return path;
  };
}
