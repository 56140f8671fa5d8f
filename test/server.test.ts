import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

/** The real entry point, built, as `npm start` runs it (test/global-setup.ts builds it first when stale). */
interface Server { child: ChildProcess, port: number, output: () => string, exited: Promise<number | null> }

async function freePort (): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function start (dataDir: string, { logLevel = 'warn' } = {}): Promise<Server> {
  const p = await freePort()
  const child = spawn(process.execPath, ['dist/bundle/server.js'], {
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(p), HOST: '127.0.0.1', LOG_LEVEL: logLevel, DATABASE_URL: '', JWT_SECRET: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => { output += d })
  child.stderr!.on('data', (d) => { output += d })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, port: p, output: () => output, exited }
}

async function waitUntilUp (server: Server): Promise<void> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output()}`)
    try {
      if ((await fetch(`http://127.0.0.1:${server.port}/healthz`)).ok) return
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`server did not come up: ${server.output()}`)
}

const within = <T>(promise: Promise<T>, ms: number) => Promise.race([
  promise,
  new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)),
])

describe('the server process on the embedded database', () => {
  const started: Server[] = []
  let dataDir: string
  afterAll(async () => {
    for (const s of started) if (s.child.exitCode === null) s.child.kill('SIGKILL')
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('starts on an empty DATA_DIR from the seed, refuses a second process on it, drains on SIGTERM, and keeps the data', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'taskbase-server-'))
    const first = await start(dataDir, { logLevel: 'info' })
    started.push(first)
    await waitUntilUp(first)
    // A copy of the build's migrated seed, not PGlite's initdb (src/db/embedded-seed.ts). Log lines
    // reach standard output within a second (http/logging.ts).
    await expect.poll(first.output, { timeout: 5_000 }).toMatch(/"created":"seed","msg":"taskbase is ready"/)
    const base = `http://127.0.0.1:${first.port}/api/v1`
    const json = { 'content-type': 'application/json' }
    const reg = await fetch(`${base}/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ email: 'owner@example.com', password: 'correct horse battery' }) })
    expect(reg.status).toBe(201)
    const { accessToken } = await reg.json() as { accessToken: string }
    const auth = { ...json, authorization: `Bearer ${accessToken}` }
    const created = await fetch(`${base}/tasks`, { method: 'POST', headers: auth, body: JSON.stringify({ title: 'kept' }) })
    expect(created.status).toBe(201)

    const second = await start(dataDir)
    started.push(second)
    // Its start from source, then up to 3 s for a holder that may be dying (data-dir-lock.ts).
    expect(await within(second.exited, 20_000)).toBe(2)
    expect(second.output()).toContain(`pid ${first.child.pid}`)
    expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200)

    first.child.kill('SIGTERM')
    expect(await within(first.exited, 10_000)).toBe(0)
    expect(existsSync(join(dataDir, 'taskbase.lock'))).toBe(false)

    const again = await start(dataDir, { logLevel: 'info' })
    started.push(again)
    await waitUntilUp(again)
    await expect.poll(again.output, { timeout: 5_000 }).toMatch(/"dataDir":"[^"]+","msg":"taskbase is ready"/) // kept: nothing created
    // The signing secret was kept in DATA_DIR, so the old access token still works.
    const list = await fetch(`http://127.0.0.1:${again.port}/api/v1/tasks`, { headers: auth })
    expect(list.status).toBe(200)
    expect(((await list.json()) as { items: Array<{ title: string }> }).items.map((t) => t.title)).toEqual(['kept'])
    again.child.kill('SIGTERM')
    expect(await within(again.exited, 10_000)).toBe(0)
  }, 90_000) // three server starts from source, on a machine the other test files keep busy
})
