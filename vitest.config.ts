import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          // Unit tests run first, in parallel; integration files after them.
          sequence: { groupOrder: 0 },
          include: [
            "services/**/src/**/*.test.ts",
            "shared/src/**/*.test.ts",
            "shared/client/src/**/*.test.ts",
          ],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          sequence: { groupOrder: 1 },
          include: [
            "services/**/test/**/*.test.ts",
            "shared/test/**/*.test.ts",
            "shared/client/test/**/*.test.ts",
          ],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Integration files start real nats-server and gateway processes; on 2 cores
          // running them all at once starves the servers they measure.
          maxWorkers: 2,
        },
      },
    ],
  },
});
