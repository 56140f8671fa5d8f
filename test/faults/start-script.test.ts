import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * scripts/start.sh, which `npm start` runs, builds first only when something is newer than the
 * build: a source or the compiler's configuration than dist/, a migration or the lock file than the
 * embedded seed. Run here in a copy of the layout it looks at, with a `node` on PATH that only
 * records how it was called, so each case is about the script's choice and nothing else.
 */
describe('the start script', () => {
  const dirs: string[] = []
  afterAll(() => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }) })

  const files = ['src/server.ts', 'src/db/migrations/0001_init.sql', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json',
    'dist/.tsbuildinfo', 'dist/bundle/server.js', 'dist/embedded-seed/PG_VERSION']
  /** A checkout whose build and seed are newer than everything else, and what its `node` was asked. */
  function checkout (nodeExit = 0) {
    const root = mkdtempSync(join(tmpdir(), 'taskbase-start-'))
    dirs.push(root)
    mkdirSync(join(root, 'scripts'))
    copyFileSync(new URL('../../scripts/start.sh', import.meta.url), join(root, 'scripts', 'start.sh'))
    for (const file of files) {
      mkdirSync(dirname(join(root, file)), { recursive: true })
      writeFileSync(join(root, file), '')
    }
    const bin = join(root, 'bin')
    mkdirSync(bin)
    // Fails only when asked to build, with `nodeExit`.
    writeFileSync(join(bin, 'node'), `#!/bin/sh\necho "$*" >> "${join(root, 'calls')}"\n` +
      `case "$1" in scripts/build-if-stale.mjs) exit ${nodeExit};; esac\n`)
    chmodSync(join(bin, 'node'), 0o755)
    const at = (file: string, secondsAgo: number) => {
      const time = new Date(Date.now() - secondsAgo * 1000)
      utimesSync(join(root, file), time, time)
    }
    for (const file of files) at(file, 100)
    at('dist/.tsbuildinfo', 10)
    at('dist/embedded-seed', 10)
    const start = (env: Record<string, string> = {}) => {
      rmSync(join(root, 'calls'), { force: true })
      const run = spawnSync('sh', ['scripts/start.sh'], { cwd: root, env: { PATH: `${bin}:${process.env.PATH}`, ...env }, encoding: 'utf8' })
      let calls: string[] = []
      try { calls = readFileSync(join(root, 'calls'), 'utf8').trim().split('\n') } catch { /* node never ran */ }
      return { status: run.status, calls }
    }
    return { root, at, start }
  }

  const server = '--max-semi-space-size=4 dist/bundle/server.js'
  const build = 'scripts/build-if-stale.mjs'

  it('starts the server without building when the build and the seed are the newest', () => {
    const { start } = checkout()
    expect(start()).toEqual({ status: 0, calls: [server] })
    expect(start({ DATABASE_URL: 'postgres://db/x' })).toEqual({ status: 0, calls: ['--max-semi-space-size=32 dist/bundle/server.js'] })
  })

  it.each([
    ['a source', 'src/server.ts'],
    ['the compiler\'s configuration', 'tsconfig.build.json'],
    ['a migration', 'src/db/migrations/0001_init.sql'],
    ['the lock file', 'package-lock.json'],
  ])('builds first when %s is newer than the build', (_what, file) => {
    const { at, start } = checkout()
    at(file, 0)
    expect(start()).toEqual({ status: 0, calls: [build, server] })
  })

  it('builds first when only the seed is older than a migration', () => {
    const { at, start } = checkout()
    at('src/db/migrations/0001_init.sql', 5)
    at('dist/.tsbuildinfo', 0)
    expect(start()).toEqual({ status: 0, calls: [build, server] })
  })

  it('builds first when there is no build, no bundle or no seed, as in a fresh clone', () => {
    const noBuild = checkout()
    rmSync(join(noBuild.root, 'dist'), { recursive: true })
    expect(noBuild.start()).toEqual({ status: 0, calls: [build, server] })
    const noBundle = checkout()
    rmSync(join(noBundle.root, 'dist', 'bundle'), { recursive: true })
    expect(noBundle.start()).toEqual({ status: 0, calls: [build, server] })
    const noSeed = checkout()
    rmSync(join(noSeed.root, 'dist', 'embedded-seed'), { recursive: true })
    expect(noSeed.start()).toEqual({ status: 0, calls: [build, server] })
  })

  it('does not start the server when the build fails, and exits with its status', () => {
    const { at, start } = checkout(3)
    at('src/server.ts', 0)
    expect(start()).toEqual({ status: 3, calls: [build] })
  })
})
