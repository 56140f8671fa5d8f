import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { copySeed, SEED_DIR } from '../../src/db/embedded-seed.js'
import { throwawayDatabase as baseThrowawayDatabase } from '../helpers.js'

/**
 * What the fault tests share: the real server process, a private PostgreSQL cluster, PgBouncer,
 * a load loop that records every outcome. Everything listens on 127.0.0.1 and every process is
 * stopped by its own pid (or, for PostgreSQL, by pg_ctl on its own data directory).
 */

const run = promisify(execFile)
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
export const PG_BIN = '/usr/lib/postgresql/15/bin'
/** 48 characters, as an operator would generate with `openssl rand -base64 36`. */
export const JWT_SECRET = 'fault-test-secret-0123456789abcdefghijklmnopqrstu'.slice(0, 48)
export const PASSWORD = 'correct horse battery staple'

export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

/** A temp directory; `owner: 'postgres'` hands it to that user (we run as root, PostgreSQL won't). */
export async function tempDir (prefix: string, owner?: 'postgres'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `taskbase-${prefix}-`))
  if (owner === 'postgres') {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  return dir
}

export const removeDir = (dir: string | undefined) => dir ? rm(dir, { recursive: true, force: true }) : Promise.resolve()

/**
 * A temp data directory holding what a server's first start leaves (a copy of the migrated seed that
 * the build made, src/db/embedded-seed.ts) but no lock and no jwt-secret: for tests of what happens
 * after that first start.
 */
export async function seededDataDir (prefix: string): Promise<string> {
  const dir = await tempDir(prefix)
  if (!copySeed(SEED_DIR, dir)) throw new Error(`no embedded seed at ${SEED_DIR}: the global setup builds it`)
  return dir
}

const asPostgres = (command: string, args: string[], timeout = 60_000) =>
  run('runuser', ['-u', 'postgres', '--', command, ...args], { timeout })

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

export interface ServerProcess {
  child: ChildProcess
  pid: number
  port: number
  base: string
  /** Everything the process wrote to stdout and stderr so far. */
  output (): string
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>
  signal: NodeJS.Signals | null
}

/** The server's environment in the fault tests: ours, on `port`, embedded, then `env` on top. */
export function serverEnv (port: number, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DATABASE_URL: '',
    JWT_SECRET: '',
    // Fault tests send a few thousand requests from one address and account: the limits are
    // tested elsewhere and would only turn answers into 429s here.
    RATE_LIMIT_API_PER_MINUTE: '0',
    RATE_LIMIT_AUTH_PER_MINUTE: '0',
    RATE_LIMIT_LOGIN_FAILURES: '0',
    ...env,
  }
}

/** The built server, as `npm start` runs it (test/global-setup.ts builds it first when stale). */
export const SERVER_ENTRY = 'dist/bundle/server.js'

/** `node dist/bundle/server.js`, as `npm start` runs it. */
export async function startServer (env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: serverEnv(port, env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => { output += d })
  child.stderr!.on('data', (d) => { output += d })
  const server: ServerProcess = {
    child,
    pid: child.pid!,
    port,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    exited: new Promise((resolve) => child.on('exit', (code, signal) => { server.signal = signal; resolve(code) })),
    signal: null,
  }
  return server
}

export async function waitUntilUp (server: ServerProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null || server.signal !== null) throw new Error(`server exited: ${server.output()}`)
    try {
      if ((await fetch(`${server.base}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) return
    } catch { /* not listening yet */ }
    await sleep(100)
  }
  throw new Error(`server did not come up in ${timeoutMs} ms: ${server.output()}`)
}

/** Ends a server this test started, by its pid; SIGKILL if it outlives `graceMs`. */
export async function stopServer (server: ServerProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!server || server.child.exitCode !== null || server.signal !== null) return
  process.kill(server.pid, 'SIGTERM')
  const killed = await Promise.race([server.exited.then(() => false), sleep(graceMs).then(() => true)])
  if (killed && server.child.exitCode === null) {
    process.kill(server.pid, 'SIGKILL')
    await server.exited
  }
}

export const within = <T>(promise: Promise<T>, ms: number, what = 'operation') => Promise.race([
  promise,
  new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)),
])

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

export interface Answer {
  status: number
  contentType: string
  retryAfter: string | null
  headers: Headers
  body: string
  ms: number
}

/** One request; a network failure or a timeout is thrown (the caller decides what it means). */
export async function request (base: string, path: string, init: { method?: string, headers?: Record<string, string>, json?: unknown, timeoutMs?: number } = {}): Promise<Answer> {
  const started = performance.now()
  const headers: Record<string, string> = { ...init.headers }
  if (init.json !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    signal: AbortSignal.timeout(init.timeoutMs ?? 15_000),
  })
  const body = await res.text()
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    retryAfter: res.headers.get('retry-after'),
    headers: res.headers,
    body,
    ms: performance.now() - started,
  }
}

/**
 * A POST whose headers go at once and whose JSON body follows in `pieces`, one every `gapMs`: a slow
 * client upload, in flight on the server from its first byte until the last.
 */
export function slowPost (base: string, path: string, headers: Record<string, string>, json: unknown, pieces = 10, gapMs = 100): Promise<Answer> {
  const body = Buffer.from(JSON.stringify(json))
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', 'content-length': String(body.length) },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({
        status: res.statusCode!,
        contentType: String(res.headers['content-type'] ?? ''),
        retryAfter: (res.headers['retry-after'] as string | undefined) ?? null,
        headers: new Headers(res.headers as Record<string, string>),
        body: Buffer.concat(chunks).toString(),
        ms: performance.now() - started,
      }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.flushHeaders()
    const size = Math.ceil(body.length / pieces)
    let offset = 0
    const next = () => {
      if (req.destroyed) return
      const end = Math.min(offset + size, body.length)
      req.write(body.subarray(offset, end))
      offset = end
      if (offset < body.length) setTimeout(next, gapMs)
      else req.end()
    }
    setTimeout(next, gapMs)
  })
}

export interface Account { id: string, email: string, accessToken: string, refreshToken: string, auth: Record<string, string> }

export async function register (base: string, email = `fault-${randomBytes(6).toString('hex')}@example.com`): Promise<Account> {
  const res = await request(base, '/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.body}`)
  const body = JSON.parse(res.body)
  return { id: body.user.id, email, accessToken: body.accessToken, refreshToken: body.refreshToken, auth: { authorization: `Bearer ${body.accessToken}` } }
}

/** Every task id of the account, following nextCursor. */
export async function listAllIds (base: string, account: Account): Promise<Set<string>> {
  const ids = new Set<string>()
  let cursor: string | null = null
  do {
    const res: Answer = await request(base, `/api/v1/tasks?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: account.auth })
    if (res.status !== 200) throw new Error(`list failed: ${res.status} ${res.body}`)
    const page = JSON.parse(res.body) as { items: Array<{ id: string }>, nextCursor: string | null }
    for (const item of page.items) ids.add(item.id)
    cursor = page.nextCursor
  } while (cursor !== null)
  return ids
}

/** A problem+json answer, with the body's status matching the response's. */
export function isProblem (answer: Answer): boolean {
  if (!answer.contentType.startsWith('application/problem+json')) return false
  try {
    const body = JSON.parse(answer.body)
    return body.status === answer.status && typeof body.title === 'string' && typeof body.detail === 'string' && typeof body.type === 'string'
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

export interface Outcome {
  op: 'create' | 'list'
  /** Milliseconds since the load started. */
  start: number
  end: number
  /** The HTTP status, or the network error's code/name when there was no answer. */
  status: number | string
  problem: boolean
  retryAfter: string | null
  /** The created task's id (201) and its title (always, for creates). */
  id?: string
  title?: string
}

export interface Load {
  outcomes: Outcome[]
  /** Milliseconds since the load started. */
  now (): number
  stop (): Promise<void>
}

/**
 * `concurrency` workers creating tasks (and, one time in `listEvery`, listing) until stopped, each
 * pausing `pauseMs` between requests so the load is steady rather than a flood. A request taking
 * over `timeoutMs` is recorded as 'timeout': a hang, which the tests refuse.
 */
export function startLoad (base: string, account: Account, { concurrency = 8, pauseMs = 10, timeoutMs = 8000, listEvery = 5, prefix = 'load' } = {}): Load {
  const t0 = performance.now()
  const now = () => performance.now() - t0
  const outcomes: Outcome[] = []
  let running = true
  let n = 0
  const worker = async () => {
    while (running) {
      const list = ++n % listEvery === 0
      const title = `${prefix}-${n}`
      const start = now()
      let outcome: Outcome
      try {
        const res = list
          ? await request(base, '/api/v1/tasks?limit=5', { headers: account.auth, timeoutMs })
          : await request(base, '/api/v1/tasks', { method: 'POST', headers: account.auth, json: { title }, timeoutMs })
        outcome = {
          op: list ? 'list' : 'create', start, end: now(), status: res.status, problem: isProblem(res), retryAfter: res.retryAfter,
          ...(list ? {} : { title, id: res.status === 201 ? JSON.parse(res.body).id : undefined }),
        }
      } catch (error) {
        const e = error as { name?: string, cause?: { code?: string } }
        const status = e.name === 'TimeoutError' ? 'timeout' : e.cause?.code ?? e.name ?? 'error'
        outcome = { op: list ? 'list' : 'create', start, end: now(), status, problem: false, retryAfter: null, ...(list ? {} : { title }) }
      }
      outcomes.push(outcome)
      if (pauseMs > 0) await sleep(pauseMs)
    }
  }
  const workers = Array.from({ length: concurrency }, worker)
  return {
    outcomes,
    now,
    async stop () { running = false; await Promise.all(workers) },
  }
}

export const acknowledged = (outcomes: Outcome[]) => outcomes.filter((o) => o.op === 'create' && o.status === 201).map((o) => o.id!)

/** `{201: 120, 503: 40}`: how many of each status, for the printed report. */
export function countStatuses (outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1
  return counts
}

// ---------------------------------------------------------------------------------------------
// A private PostgreSQL 15 cluster
// ---------------------------------------------------------------------------------------------

export interface Cluster {
  dir: string
  port: number
  url: string
  start (): Promise<void>
  stop (mode: 'fast' | 'immediate'): Promise<void>
  /** Stops it if running and deletes its files. */
  destroy (): Promise<void>
}

/** initdb in a temp dir (trust auth, owned by postgres), not started. */
export async function createCluster (): Promise<Cluster> {
  const dir = await tempDir('pg', 'postgres')
  const data = join(dir, 'data')
  const port = await freePort()
  await asPostgres(`${PG_BIN}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=50`
  const pgCtl = (...args: string[]) => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', data, '-w', '-t', '30', ...args])
  const running = () => existsSync(join(data, 'postmaster.pid'))
  return {
    dir,
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start () { await pgCtl('-o', options, '-l', join(dir, 'postgres.log'), 'start') },
    async stop (mode) { await pgCtl('-m', mode, 'stop') },
    async destroy () {
      if (running()) {
        try {
          await pgCtl('-m', 'immediate', 'stop')
        } catch {
          // pg_ctl could not stop it: end the postmaster we started, by the pid in its own file.
          const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0])
          if (pid > 0) try { process.kill(pid, 'SIGQUIT') } catch { /* gone */ }
        }
      }
      await removeDir(dir)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// A throwaway database on the shared server
// ---------------------------------------------------------------------------------------------

export const SHARED_URL = process.env.TEST_DATABASE_URL

/** A throwaway database named taskbase_fault_*, as the HTTP tests make theirs. */
export const throwawayDatabase = (adminUrl: string) => baseThrowawayDatabase(adminUrl, 'taskbase_fault')

// ---------------------------------------------------------------------------------------------
// PgBouncer
// ---------------------------------------------------------------------------------------------

export const PGBOUNCER = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((path) => existsSync(path))

export interface Bouncer {
  port: number
  pid: number
  /** The URL of `database` through the pooler. */
  url (database: string): string
  output (): string
  stop (): Promise<void>
}

/**
 * PgBouncer in transaction mode in front of `host:port`, every database name passed through, trust
 * auth. Started in the foreground with `-u postgres` (it refuses to run as root), so the child's
 * pid is PgBouncer's own.
 */
export async function startPgBouncer (upstream: { host: string, port: number }, settings: Record<string, string | number> = {}): Promise<Bouncer> {
  if (!PGBOUNCER) throw new Error('pgbouncer is not installed')
  const dir = await tempDir('pgbouncer', 'postgres')
  const port = await freePort()
  const config = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'trust',
    auth_file: join(dir, 'userlist.txt'),
    pool_mode: 'transaction',
    max_client_conn: 200,
    default_pool_size: 5,
    // node-postgres sends no extra startup parameters by default; psql and others may.
    ignore_startup_parameters: 'extra_float_digits',
    ...settings,
  }
  const ini = [
    '[databases]',
    `* = host=${upstream.host} port=${upstream.port}`,
    '[pgbouncer]',
    ...Object.entries(config).map(([k, v]) => `${k} = ${v}`),
  ].join('\n')
  const { writeFileSync } = await import('node:fs')
  writeFileSync(join(dir, 'pgbouncer.ini'), `${ini}\n`)
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n')
  const { stdout: uid } = await run('id', ['-u', 'postgres'])
  for (const file of ['pgbouncer.ini', 'userlist.txt']) chownSync(join(dir, file), Number(uid.trim()), -1)
  const child = spawn(PGBOUNCER, ['-u', 'postgres', join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => { output += d })
  child.stderr!.on('data', (d) => { output += d })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${output}`)
    try {
      const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` })
      await client.connect()
      await client.query('select 1')
      await client.end()
      break
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`pgbouncer did not come up: ${(error as Error).message}\n${output}`)
      await sleep(100)
    }
  }
  return {
    port,
    pid: child.pid!,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    output: () => output,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGINT') // PgBouncer's "safe shutdown"
        const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)])
        if (timedOut) { process.kill(child.pid!, 'SIGKILL'); await exited }
      }
      await removeDir(dir)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for requests no well-behaved client would send
// ---------------------------------------------------------------------------------------------

export interface RawAnswer {
  /** 0 when the connection closed without an answer, -1 when none came within the timeout. */
  status: number
  headers: Record<string, string>
  body: string
  ms: number
}

/** Writes `raw` on a fresh connection and reads the answer until the server closes it. */
export function rawRequest (port: number, raw: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  const started = performance.now()
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1')
    let done = false
    const finish = (timedOut = false) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...parseResponse(Buffer.concat(chunks), timedOut), ms: performance.now() - started })
    }
    const timer = setTimeout(() => finish(true), timeoutMs)
    socket.on('connect', () => socket.write(raw))
    socket.on('data', (c) => {
      chunks.push(c)
      // Answers carry Content-Length (or are chunked); stop as soon as one is complete.
      const parsed = parseResponse(Buffer.concat(chunks), false)
      if (parsed.complete) finish()
    })
    socket.on('end', () => finish())
    socket.on('error', () => finish())
    socket.on('close', () => finish())
  })
}

function parseResponse (data: Buffer, timedOut: boolean): Omit<RawAnswer, 'ms'> & { complete: boolean } {
  const text = data.toString('latin1')
  const headEnd = text.indexOf('\r\n\r\n')
  if (headEnd < 0) return { status: timedOut ? -1 : 0, headers: {}, body: '', complete: false }
  const [statusLine = '', ...lines] = text.slice(0, headEnd).split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = data.subarray(Buffer.byteLength(text.slice(0, headEnd + 4), 'latin1'))
  let complete = false
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = []
    let offset = 0
    for (;;) {
      const lineEnd = body.indexOf('\r\n', offset)
      if (lineEnd < 0) break
      const size = parseInt(body.subarray(offset, lineEnd).toString(), 16)
      if (Number.isNaN(size)) break
      if (size === 0) { complete = true; break }
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
      offset = lineEnd + 2 + size + 2
    }
    body = Buffer.concat(parts)
  } else if (headers['content-length'] !== undefined) {
    complete = body.length >= Number(headers['content-length'])
  }
  return { status, headers, body: body.toString('utf8'), complete }
}
