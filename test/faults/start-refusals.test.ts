import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../src/db/client.js'
import { lockDataDir } from '../../src/db/data-dir-lock.js'
import {
  freePort, removeDir, seededDataDir, serverEnv, SHARED_URL, startServer, stopServer, tempDir, throwawayDatabase, waitUntilUp, within,
  type ServerProcess,
} from './support.js'

/**
 * What an operator sees when taskbase will not start: one message saying what to fix, no stack
 * trace, and exit code 2 when the fix is theirs (configuration, kept data); 1 for anything else.
 */
const STACK_FRAME = /^\s+at /m

describe('a start refused for what the operator must fix', () => {
  const dirs: string[] = []
  const servers: ServerProcess[] = []
  afterAll(async () => {
    for (const server of servers) await stopServer(server)
    for (const dir of dirs) await removeDir(dir)
  })
  /**
   * Starts a server on a fresh data directory (`prepare` may put files in it; `seeded`: one a first
   * start has migrated, see seededDataDir) and waits for its exit.
   */
  const refusedStart = async (env: Record<string, string>, prepare: (dataDir: string) => void = () => {}, { seeded = false } = {}) => {
    const dataDir = seeded ? await seededDataDir('refused') : await tempDir('refused')
    dirs.push(dataDir)
    prepare(dataDir)
    const server = await startServer({ DATA_DIR: dataDir, ...env })
    servers.push(server)
    const code = await within(server.exited, 30_000, 'the refused server to exit')
    return { code, output: server.output(), dataDir }
  }

  // Concurrent where a refusal is all a test waits for: each has its own data directory or database,
  // and most of its time is a process starting (the two tests that start a server again stay alone).
  it.concurrent.each([
    [{ PORT: 'abc' }, 'PORT must be a whole number from 0 to 65535, got "abc"'],
    [{ CORS_ORIGINS: 'null' }, 'CORS_ORIGINS must be * or a comma-separated list of origins'],
    [{ CORS_ORIGINS: 'https://app.*.example.com' }, '"https://app.*.example.com" is not one'],
  ])('prints the configuration problem alone and exits 2 for %j', async (env, problem) => {
    const { code, output } = await refusedStart(env)
    expect(code).toBe(2)
    const lines = output.trim().split('\n')
    expect(lines).toEqual(['Invalid configuration:', expect.stringMatching(/^- /)]) // the heading and the one problem
    expect(lines[1]).toContain(problem)
    expect(output).not.toMatch(STACK_FRAME)
  })

  it.each([
    ['too short', 'short-kept-secret', '17 bytes long'],
    ['empty', '\n', 'empty'],
  ])('refuses a kept jwt-secret file that is %s, exits 2 without echoing it, and starts once it is deleted', async (_, kept, said) => {
    // A kept secret sits beside data a first start wrote (which the fix below keeps).
    const { code, output, dataDir } = await refusedStart({}, (dir) => writeFileSync(join(dir, 'jwt-secret'), kept, { mode: 0o600 }), { seeded: true })
    expect(code).toBe(2)
    expect(output).toContain(`The signing secret kept in ${join(dataDir, 'jwt-secret')} is ${said}; it must be at least 32 bytes.`)
    expect(output).toContain('Delete that file to have a new one generated')
    if (kept.trim() !== '') expect(output).not.toContain(kept)
    expect(output).not.toMatch(STACK_FRAME)

    // The operator's fix works, on the same data directory (left unlocked and cleanly closed).
    rmSync(join(dataDir, 'jwt-secret'))
    const fixed = await startServer({ DATA_DIR: dataDir })
    servers.push(fixed)
    await waitUntilUp(fixed)
    const signUp = await fetch(`${fixed.base}/api/v1/auth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'fixed@example.com', password: 'correct horse battery' }),
    })
    expect(signUp.status).toBe(201)
    await stopServer(fixed)
  }, 90_000)

  it.concurrent('exits 1, not 2, with the cause and no stack trace when the database cannot be reached', async () => {
    const closedPort = await freePort() // nothing listens there
    const { code, output } = await refusedStart({ DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/taskbase` })
    expect(code).toBe(1)
    expect(output).toMatch(/^taskbase failed to start: .*ECONNREFUSED/m)
    expect(output).not.toMatch(STACK_FRAME)
  })

  describe.concurrent('npm run db:migrate', () => {
    const migrate = async (env: Record<string, string>) => {
      const child = spawn(process.execPath, ['dist/db/migrate-cli.js'], { env: serverEnv(0, env), stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      child.stdout.on('data', (d) => { output += d })
      child.stderr.on('data', (d) => { output += d })
      const code = await within(new Promise<number | null>((resolve) => child.on('exit', resolve)), 30_000, 'db:migrate to exit')
      return { code, output }
    }

    it('refuses a bad configuration the same way: the message alone, exit 2', async () => {
      const dataDir = await tempDir('migrate')
      dirs.push(dataDir)
      const { code, output } = await migrate({ PORT: 'abc', DATA_DIR: dataDir })
      expect(code).toBe(2)
      expect(output.trim().split('\n')).toEqual(['Invalid configuration:', '- PORT must be a whole number from 0 to 65535, got "abc"'])
    })

    it('refuses a data directory in use, naming its holder, exit 2', async () => {
      const dataDir = await tempDir('migrate-locked')
      dirs.push(dataDir)
      const release = await lockDataDir(dataDir) // held by this test runner, as a server would hold it
      try {
        const { code, output } = await migrate({ DATA_DIR: dataDir })
        expect(code).toBe(2)
        expect(output).toContain(`The data directory ${dataDir} is in use by another taskbase process (pid ${process.pid})`)
        expect(output).not.toMatch(STACK_FRAME)
      } finally {
        release()
      }
    })
  })

  describe.skipIf(!SHARED_URL)('on a server database', { concurrent: true }, () => {
    it.each([
      ['too short', 'x', '1 byte long'],
      ['empty', '', 'empty'],
    ])('refuses a kept server_settings secret that is %s and exits 2', async (_, kept, said) => {
      const database = await throwawayDatabase(SHARED_URL!)
      try {
        const migrated = await openPostgres({ url: database.url, poolSize: 1 })
        await migrated.migrate()
        await migrated.close()
        const client = new pg.Client({ connectionString: database.url })
        await client.connect()
        await client.query(`insert into server_settings (key, value) values ('jwt_secret', $1)`, [kept])
        await client.end()
        const { code, output } = await refusedStart({ DATABASE_URL: database.url })
        expect(code).toBe(2)
        expect(output).toContain(`The signing secret kept in the database (table server_settings, key jwt_secret) is ${said}; it must be at least 32 bytes.`)
        expect(output).toContain("delete from server_settings where key = 'jwt_secret'")
        expect(output).not.toMatch(STACK_FRAME)
      } finally {
        await database.drop()
      }
    }, 60_000)
  })
})
