/**
 * Webhook delivery benchmark: the real server in a child process, WEBHOOKS_ALLOW_PRIVATE=true, a
 * receiver on the loopback answering 200 at once, BENCH_WEBHOOK_USERS users with one endpoint each
 * (events `*`). Two phases:
 *   1. paced: BENCH_WEBHOOK_RATE task creates per second for BENCH_DURATION s, spread over the users:
 *      the latency from the write to its delivery when the server keeps up (p50, p99, max);
 *   2. flood: BENCH_WEBHOOK_CONNECTIONS creates in flight for BENCH_DURATION s: deliveries per second
 *      (counted from the first write to the last delivery, so a backlog still draining counts against it).
 * Latency runs from the event's `timestamp` (the write transaction's start, `now()`, a few ms before
 * its commit: an upper bound on commit-to-delivery) to the receiver's clock on arrival.
 *
 *   npm run bench:webhooks                       # embedded database in a fresh temp dir
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:webhooks
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { call, createThrowawayDatabase, expectStatus, PASSWORD, startServer, stopServer, tail } from './lib.js'

const env = process.env
const USERS = Number(env.BENCH_WEBHOOK_USERS ?? 20)
const RATE = Number(env.BENCH_WEBHOOK_RATE ?? 100)
const CONNECTIONS = Number(env.BENCH_WEBHOOK_CONNECTIONS ?? 32)
const DURATION_S = Number(env.BENCH_DURATION ?? 10)

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN

async function main (): Promise<void> {
  const latencies: number[] = []
  let delivered = 0
  let lastDeliveryAt = 0
  const receiver = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      const now = Date.now()
      const event = JSON.parse(body) as { type: string, timestamp: string }
      if (event.type === 'task.upsert') {
        latencies.push(now - Date.parse(event.timestamp))
        delivered++
        lastDeliveryAt = now
      }
      res.writeHead(204).end()
    })
  })
  receiver.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  const receiverPort = (receiver.address() as AddressInfo).port

  const cleanups: Array<() => Promise<void>> = [async () => { receiver.close() }]
  let serverEnv: Record<string, string>
  if (env.BENCH_DATABASE_URL) {
    const database = await createThrowawayDatabase(env.BENCH_DATABASE_URL)
    cleanups.push(database.drop)
    serverEnv = { DATABASE_URL: database.url }
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'taskbase-bench-webhooks-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    serverEnv = { DATA_DIR: dir }
  }
  const logPath = join(tmpdir(), `taskbase-bench-webhooks-${process.pid}.log`)
  const server = await startServer({ ...serverEnv, WEBHOOKS_ALLOW_PRIVATE: 'true' }, logPath)
  cleanups.push(() => stopServer(server))
  try {
    const tokens: string[] = []
    for (let i = 0; i < USERS; i++) {
      const registered = await call(server.baseUrl, 'POST', '/api/v1/auth/register', undefined, { email: `hooks-${i}-${Date.now()}@example.com`, password: PASSWORD })
      expectStatus(registered, 201, 'register')
      const token = registered.body.accessToken as string
      expectStatus(await call(server.baseUrl, 'POST', '/api/v1/webhooks', token, { url: `http://127.0.0.1:${receiverPort}/u${i}`, events: ['*'] }), 201, 'webhook')
      tokens.push(token)
    }
    let writes = 0
    const create = async (n: number) => {
      expectStatus(await call(server.baseUrl, 'POST', '/api/v1/tasks', tokens[n % tokens.length], { title: `bench ${n}` }), 201, 'create')
      writes++
    }
    const drain = async (target: number) => {
      const deadline = Date.now() + 120_000
      while (delivered < target && Date.now() < deadline) await sleep(20)
      if (delivered < target) throw new Error(`only ${delivered} of ${target} delivered after 120 s`)
    }

    // 1. Paced: latency while the server keeps up.
    const pacedStart = Date.now()
    const inFlight: Promise<void>[] = []
    for (let n = 0; Date.now() - pacedStart < DURATION_S * 1000; n++) {
      const due = pacedStart + n * 1000 / RATE
      if (due > Date.now()) await sleep(due - Date.now())
      inFlight.push(create(n))
    }
    await Promise.all(inFlight)
    await drain(writes)
    const paced = [...latencies].sort((a, b) => a - b)
    const pacedWrites = writes

    // 2. Flood: deliveries per second.
    latencies.length = 0
    const floodStart = Date.now()
    let next = pacedWrites
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() - floodStart < DURATION_S * 1000) await create(next++)
    }))
    const writesEnd = Date.now()
    await drain(writes)
    const flood = [...latencies].sort((a, b) => a - b)
    const floodWrites = writes - pacedWrites
    const seconds = (lastDeliveryAt - floodStart) / 1000

    console.log(`database: ${env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'embedded (PGlite)'}; ${USERS} users, one endpoint each`)
    console.log('| phase | writes | writes/s | deliveries/s | p50 ms | p99 ms | max ms |')
    console.log('|---|---|---|---|---|---|---|')
    console.log(`| paced ${RATE}/s | ${pacedWrites} | ${(pacedWrites / DURATION_S).toFixed(0)} | - | ${percentile(paced, 0.5)} | ${percentile(paced, 0.99)} | ${paced.at(-1)} |`)
    console.log(`| flood ${CONNECTIONS} conns | ${floodWrites} | ${(floodWrites / ((writesEnd - floodStart) / 1000)).toFixed(0)} | ${(floodWrites / seconds).toFixed(0)} | ` +
      `${percentile(flood, 0.5)} | ${percentile(flood, 0.99)} | ${flood.at(-1)} |`)
  } catch (error) {
    console.error(tail(logPath))
    throw error
  } finally {
    for (const step of cleanups.reverse()) await step().catch((error: Error) => console.error('cleanup:', error.message))
  }
}

await main()
