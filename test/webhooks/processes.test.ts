import { afterAll, describe, expect, it } from 'vitest'
import {
  register, removeDir, request, SHARED_URL, startServer, stopServer, tempDir, throwawayDatabase, waitUntilUp, type ServerProcess,
} from '../faults/support.js'
import { startReceiver, type Receiver } from './support.js'

/** Real server processes (node dist/bundle/server.js): a crash between a write and its delivery, and two processes on one PostgreSQL. */

const WEBHOOKS = { WEBHOOKS_ALLOW_PRIVATE: 'true', WEBHOOKS_RETRY_SCHEDULE: '1s' }

async function createHook (base: string, auth: Record<string, string>, url: string, events = ['*']): Promise<any> {
  const res = await request(base, '/api/v1/webhooks', { method: 'POST', headers: auth, json: { url, events } })
  if (res.status !== 201) throw new Error(`webhook create: ${res.status} ${res.body}`)
  return JSON.parse(res.body)
}

async function createTask (base: string, auth: Record<string, string>, title: string): Promise<any> {
  const res = await request(base, '/api/v1/tasks', { method: 'POST', headers: auth, json: { title } })
  if (res.status !== 201) throw new Error(`task create: ${res.status} ${res.body}`)
  return JSON.parse(res.body)
}

describe('a server killed between a write and its delivery (embedded database)', () => {
  let dir: string | undefined
  let server: ServerProcess | undefined
  let receiver: Receiver | undefined
  afterAll(async () => {
    await stopServer(server)
    await receiver?.close()
    await removeDir(dir)
  })

  it('delivers after the restart: the attempt cut short again, with the same webhook-id, and what was still queued, in order', async () => {
    dir = await tempDir('webhooks-kill')
    // The first attempt never gets an answer: the process is mid-delivery when it dies.
    receiver = await startReceiver(({ count }) => count === 1 ? 'hang' : 200)
    const env = { ...WEBHOOKS, DATA_DIR: dir, JOBS_LEASE_SECONDS: '2' }
    server = await startServer(env)
    await waitUntilUp(server)
    const account = await register(server.base)
    await createHook(server.base, account.auth, receiver.url('/kill'), ['task.upsert'])
    await createTask(server.base, account.auth, 'first')
    await receiver.until((r) => r.length === 1)
    await createTask(server.base, account.auth, 'second') // committed, queued behind the first
    process.kill(server.pid, 'SIGKILL')
    await server.exited
    expect(receiver.received).toHaveLength(1)

    server = await startServer(env)
    await waitUntilUp(server)
    await receiver.until((r) => r.length >= 3, 15_000)
    const [cut, again, second] = receiver.received
    expect([cut, again, second].map((d) => d!.json.data.task.title)).toEqual(['first', 'first', 'second'])
    expect(again!.headers['webhook-id']).toBe(cut!.headers['webhook-id'])
    expect(second!.headers['webhook-id']).not.toBe(cut!.headers['webhook-id'])
    expect(receiver.received).toHaveLength(3)
  }, 120_000) // two starts of the embedded server: ~25 s on an idle 2-core machine
})

describe.skipIf(!SHARED_URL)('two server processes on one PostgreSQL', () => {
  const servers: ServerProcess[] = []
  let receiver: Receiver | undefined
  let drop: (() => Promise<void>) | undefined
  afterAll(async () => {
    for (const server of servers) await stopServer(server)
    await receiver?.close()
    await drop?.()
  })

  it('makes each attempt once: every event arrives once, a retried one twice, in write order per endpoint', async () => {
    const database = await throwawayDatabase(SHARED_URL!)
    drop = database.drop
    // Every 8th event's first attempt fails: it is retried (by whichever process), once.
    const seen = new Map<string, number>()
    receiver = await startReceiver(({ headers }) => {
      const id = String(headers['webhook-id'])
      const n = (seen.get(id) ?? 0) + 1
      seen.set(id, n)
      return n === 1 && id.charCodeAt(0) % 8 === 0 ? 500 : 200
    })
    for (let i = 0; i < 2; i++) servers.push(await startServer({ ...WEBHOOKS, DATABASE_URL: database.url }))
    await Promise.all(servers.map((s) => waitUntilUp(s)))
    const [a, b] = servers as [ServerProcess, ServerProcess]
    const PER_USER = 30
    const users = await Promise.all([0, 1, 2].map(async (u) => {
      const account = await register(a.base)
      for (const e of [0, 1]) await createHook((e === 0 ? a : b).base, account.auth, receiver!.url(`/u${u}/e${e}`))
      return account
    }))
    // Each user writes in order, alternating between the processes; the users at once.
    await Promise.all(users.map(async (account) => {
      for (let i = 0; i < PER_USER; i++) await createTask((i % 2 === 0 ? a : b).base, account.auth, `t${i}`)
    }))
    const expected = users.length * 2 * PER_USER
    await receiver.until((r) => new Set(r.filter((d) => d.status === 200).map((d) => d.headers['webhook-id'])).size >= expected, 30_000)
    const ok = receiver.received.filter((d) => d.status === 200)
    expect(ok).toHaveLength(expected) // no event delivered twice
    for (const [id, attempts] of seen) expect(attempts, id).toBe(id.charCodeAt(0) % 8 === 0 ? 2 : 1)
    for (let u = 0; u < users.length; u++) {
      for (const e of [0, 1]) {
        expect(receiver.on(`/u${u}/e${e}`).filter((d) => d.status === 200).map((d) => d.json.data.task.title))
          .toEqual(Array.from({ length: PER_USER }, (_, i) => `t${i}`))
      }
    }
  }, 120_000)
})
