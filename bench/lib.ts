/** What the benchmarks share: a throwaway database, the real server as a child process, HTTP calls. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const HOST = '127.0.0.1'
export const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])
export const PASSWORD = 'correct horse battery'

/** A port nobody listens on right now; the server binds it a moment later. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, HOST)
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('could not find a free port')
  return address.port
}

/** A throwaway database on the server of `adminUrl`; `drop` removes it even with open sessions. */
export async function createThrowawayDatabase (adminUrl: string): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `taskbase_bench_${randomBytes(6).toString('hex')}`
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try { await client.query(statement) } finally { await client.end() }
  }
  await admin(`create database ${name}`)
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) }
}

/** The last lines the server wrote, to explain a failure. */
export function tail (path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') || '(no server output)'
  } catch {
    return '(no server output)'
  }
}

export interface Server {
  child: ChildProcess
  baseUrl: string
  logPath: string
}

/**
 * Builds dist/ when a source is newer than the last build, as `npm start` does
 * (scripts/build-if-stale.mjs): the server as operators run it, `node dist/bundle/server.js`.
 */
export function buildServer (): void {
  const built = spawnSync(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: ROOT, stdio: 'inherit' })
  if (built.status !== 0) throw new Error('building the server failed (node scripts/build-if-stale.mjs)')
}

/**
 * The server in a child process, from source through tsx; with `built`, `node dist/bundle/server.js` (call
 * `buildServer` first). Resolves once it answers /readyz.
 */
export async function startServer (env: Record<string, string>, logPath: string, { built = false } = {}): Promise<Server> {
  const port = await freePort()
  const log = openSync(logPath, 'a')
  // Only what the server needs: a DATABASE_URL or JWT_SECRET in our own environment must not leak in.
  const child = spawn(process.execPath, built ? ['dist/bundle/server.js'] : ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      ...(process.env.TMPDIR && { TMPDIR: process.env.TMPDIR }), // tsx keeps its cache there
      HOST,
      PORT: String(port),
      // Request logs would measure pino writing a file, not the API; warnings still land in the log.
      LOG_LEVEL: 'warn',
      // A run with long scenarios outlasts the default 15 minutes of an access token.
      ACCESS_TOKEN_TTL_SECONDS: '7200',
      // The seeding signs up hundreds of accounts from one address, and the load is one client.
      RATE_LIMIT_AUTH_PER_MINUTE: '0',
      RATE_LIMIT_API_PER_MINUTE: '0',
      ...env,
    },
    stdio: ['ignore', log, log],
  })
  closeSync(log) // the child holds its own copy
  const server = { child, baseUrl: `http://${HOST}:${port}`, logPath }
  const exited = once(child, 'exit')
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break
    try {
      const res = await fetch(`${server.baseUrl}/readyz`)
      if (res.ok) return server
    } catch { /* not listening yet */ }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 100))])
  }
  await stopServer(server)
  throw new Error(`the server did not become ready (exit code ${child.exitCode ?? 'none'}); its output:\n${tail(logPath)}`)
}

/** SIGTERM by pid (the server drains and closes its database), SIGKILL if it has not exited in 15 s. */
export async function stopServer ({ child }: Server): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  try {
    process.kill(child.pid, 'SIGTERM')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return // already gone
    throw error
  }
  const timer = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL') } catch { /* gone */ } }, 15_000)
  await exited
  clearTimeout(timer)
}

export interface ApiResponse { status: number, body: any }

export async function call (baseUrl: string, method: string, path: string, token?: string, body?: unknown): Promise<ApiResponse> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

export function expectStatus (res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`)
}

/** Runs `work` on every item with at most `concurrency` in flight. */
export async function inParallel<T, R> (items: T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await work(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}

