import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tests of real server processes run the built server: built first when stale.
    globalSetup: ['test/global-setup.ts'],
    // Each file builds its own app on its own database; PGlite and Argon2 are CPU-heavy, so two
    // files at a time on a 2-core machine.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
