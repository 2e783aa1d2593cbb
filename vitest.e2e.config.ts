import { defineConfig } from 'vitest/config';

// End to end on the real one-node cluster with the real image: `npm run test:e2e`. The global
// setups build dist/, start the cluster (scripts/kube/) and build and import the image
// (scripts/image/build.sh). One file at a time: one node, and the restarts take the kubelet's
// real CrashLoopBackOff (10 s, 20 s, 40 s, ...).
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/kube/global-setup.ts', 'test/e2e/global-setup.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
