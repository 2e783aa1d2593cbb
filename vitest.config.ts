import { configDefaults, defineConfig } from 'vitest/config';

// Tests start real agents, real clients and real namespaces: generous timeouts,
// and files run in separate processes so one test's fds never show in another's counts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/kube needs the real cluster: npm run test:kube (vitest.kube.config.ts);
    // test/e2e the cluster and the image: npm run test:e2e (vitest.e2e.config.ts)
    exclude: [...configDefaults.exclude, 'test/kube/**', 'test/e2e/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
