import { defineConfig } from 'vitest/config';

// Tests against the real one-node cluster (scripts/kube/): `npm run test:kube`. One file at a time:
// they share one node (and with other people on the machine), and pods take seconds to come and go.
export default defineConfig({
  test: {
    include: ['test/kube/**/*.test.ts'],
    // dist/ first (the pods run bin/fdstore.js from this checkout), then the cluster
    globalSetup: ['test/global-setup.ts', 'test/kube/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
