/**
 * Event-stream benchmark: memory per open stream, and the time from a write's acknowledgement to
 * its delivery on every stream of its user, at the 50th and 99th percentiles.
 *
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:streams
 *   BENCH_STREAMS=1000 BENCH_HELD_STREAMS=10000 BENCH_WRITES=300 ...
 *
 * Without BENCH_DATABASE_URL it runs on the embedded database. Loopback only; the server is a child
 * process stopped by pid, the throwaway database dropped at the end.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, request, type ClientRequest } from 'node:http'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  call, createThrowawayDatabase, expectStatus, inParallel, LOOPBACK, PASSWORD, startServer, stopServer, tail,
} from './lib.js'

const USERS = 100

function setting (name: string, fallback: number, max: number): number {
  const raw = process.env[name]
  const value = raw ? Number(raw) : fallback
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be a whole number from 1 to ${max}`)
  return value
}

/** The server's resident memory, from /proc (Linux). */
function rssBytes (pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) * 1024 : Number.NaN
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN

interface OpenStream { req: ClientRequest, onEvent: (handler: (event: string, data: string) => void) => void }

/** Opens GET /api/v1/events; resolves once the server's first comment arrives. */
function openStream (baseUrl: string, token: string, agent: Agent): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    let handler: (event: string, data: string) => void = () => {}
    const req = request(`${baseUrl}/api/v1/events`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`events: ${res.statusCode}`)); res.resume(); return }
      let buffer = ''
      let connected = false
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!connected) { connected = true; resolve({ req, onEvent: (h) => { handler = h } }) }
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event && data) handler(event, data)
        }
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function main (): Promise<void> {
  const streamsForLatency = setting('BENCH_STREAMS', 1_000, 20_000)
  const heldStreams = setting('BENCH_HELD_STREAMS', 10_000, 20_000)
  const writes = setting('BENCH_WRITES', 300, 10_000)
  const adminUrl = process.env.BENCH_DATABASE_URL || undefined
  if (adminUrl !== undefined && !LOOPBACK.has(new URL(adminUrl).hostname)) throw new Error('BENCH_DATABASE_URL must point at the loopback')

  const cleanups: Array<() => Promise<void>> = []
  const tmp = await mkdtemp(join(tmpdir(), 'taskbase-streams-'))
  cleanups.push(() => rm(tmp, { recursive: true, force: true }))
  const logPath = join(tmp, 'server.log')
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  const open: OpenStream[] = []
  try {
    let env: Record<string, string>
    if (adminUrl) {
      const database = await createThrowawayDatabase(adminUrl)
      cleanups.push(database.drop)
      env = { DATABASE_URL: database.url, JWT_SECRET: randomBytes(36).toString('base64'), DATABASE_POOL_SIZE: '20' }
    } else {
      env = { DATA_DIR: join(tmp, 'data') }
    }
    const server = await startServer(env, logPath)
    cleanups.push(() => stopServer(server))
    const pid = server.child.pid!
    console.log(`taskbase streams bench on ${adminUrl ? 'PostgreSQL' : 'embedded PGlite'}, server pid ${pid}; load average ${loadavg()[0]!.toFixed(2)}`)

    const users = await inParallel(Array.from({ length: USERS }, (_, i) => i), 8, async (i) => {
      const res = await call(server.baseUrl, 'POST', '/api/v1/auth/register', undefined, { email: `streams-${i}@bench.example`, password: PASSWORD })
      expectStatus(res, 201, 'register')
      return res.body.accessToken as string
    })
    // One stream and one write per user first, so lazily built state (LISTEN, JIT) is not counted.
    open.push(await openStream(server.baseUrl, users[0]!, agent))
    expectStatus(await call(server.baseUrl, 'POST', '/api/v1/tasks', users[0], { title: 'warm-up' }), 201, 'warm-up')
    await new Promise((resolve) => setTimeout(resolve, 500))
    global.gc?.()
    const rssBefore = rssBytes(pid)

    // 1. Latency with `streamsForLatency` streams, spread evenly over the users.
    const latencies: number[] = []
    const sentAt = new Map<string, number>()
    const expected = new Map<string, number>()
    const started = await inParallel(Array.from({ length: streamsForLatency - 1 }, (_, i) => i + 1), 200,
      async (i) => ({ user: i % USERS, stream: await openStream(server.baseUrl, users[i % USERS]!, agent) }))
    started.unshift({ user: 0, stream: open[0]! })
    open.push(...started.slice(1).map((s) => s.stream))
    const streamsOfUser = new Map<number, number>()
    for (const { user, stream } of started) {
      streamsOfUser.set(user, (streamsOfUser.get(user) ?? 0) + 1)
      stream.onEvent((event, data) => {
        if (event !== 'task.upsert') return
        const { title } = JSON.parse(data) as { title: string }
        const sent = sentAt.get(title)
        if (sent !== undefined) {
          latencies.push(performance.now() - sent)
          expected.set(title, (expected.get(title) ?? 0) - 1)
        }
      })
    }
    const rssLatency = rssBytes(pid)
    await inParallel(Array.from({ length: writes }, (_, i) => i), 10, async (i) => {
      const title = `bench-write-${i}`
      const user = i % USERS
      expected.set(title, streamsOfUser.get(user) ?? 0)
      const res = await call(server.baseUrl, 'POST', '/api/v1/tasks', users[user], { title })
      sentAt.set(title, performance.now()) // from the acknowledgement: what a second device waits for
      expectStatus(res, 201, 'write')
    })
    const deadline = Date.now() + 10_000
    while ([...expected.values()].some((n) => n > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    const missing = [...expected.values()].reduce((sum, n) => sum + Math.max(0, n), 0)
    latencies.sort((a, b) => a - b)

    // 2. Hold `heldStreams` streams at once.
    const more = heldStreams - open.length
    if (more > 0) {
      open.push(...await inParallel(Array.from({ length: more }, (_, i) => i), 200,
        (i) => openStream(server.baseUrl, users[i % USERS]!, agent)))
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const rssHeld = rssBytes(pid)
    const alive = (await fetch(`${server.baseUrl}/healthz`)).ok

    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
    console.log(`\nstreams for latency: ${streamsForLatency} over ${USERS} users; ${writes} writes, ${latencies.length} deliveries, ${missing} missing`)
    console.log(`write acknowledged -> event delivered: p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`)
    console.log(`server RSS: ${mib(rssBefore)} with 1 stream, ${mib(rssLatency)} with ${streamsForLatency}, ${mib(rssHeld)} with ${open.length}`)
    console.log(`memory per stream: ${((rssHeld - rssBefore) / (open.length - 1) / 1024).toFixed(1)} KiB (RSS growth / streams)`)
    console.log(`held ${open.length} open streams; server still answering /healthz: ${alive}`)
    if (missing > 0 || !alive) process.exitCode = 1
  } catch (error) {
    console.error(`server output (last lines):\n${tail(logPath)}`)
    throw error
  } finally {
    for (const stream of open) stream.req.destroy()
    agent.destroy()
    for (const step of cleanups.reverse()) {
      try { await step() } catch (error) { console.error('cleanup:', error instanceof Error ? error.message : error) }
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
