import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { SignJWT } from 'jose'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres } from '../../src/db/client.js'
import { buildTestApp, expectProblem, PASSWORD, sessionIdOf, testDatabases, type Account, type TestApp } from '../helpers.js'
import { asProblem, asStream, get, json, median, portOf, summary, type SseEvent } from './sse.js'

type Task = Record<string, any>


describe.each(testDatabases)('GET /api/v1/events on $name', (target) => {
  let t: TestApp
  let port: number

  beforeAll(async () => {
    t = await buildTestApp(target)
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    port = portOf(t.app)
  })
  afterAll(() => t.close())

  const open = async (account: Account | null, path = '/api/v1/events', headers: Record<string, string> = {}) =>
    asStream(await get(port, path, { ...(account ? account.headers : {}), ...headers }))

  const patch = async (account: Account, id: string, payload: Record<string, unknown>): Promise<Task> => {
    const res = await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${id}`, headers: account.headers, payload })
    if (res.statusCode !== 200) throw new Error(`patch failed: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  const remove = async (account: Account, id: string): Promise<void> => {
    const res = await t.inject({ method: 'DELETE', url: `/api/v1/tasks/${id}`, headers: account.headers })
    if (res.statusCode !== 204) throw new Error(`delete failed: ${res.statusCode} ${res.body}`)
  }
  const createClassic = async (account: Account, payload: Record<string, unknown>): Promise<Task> => {
    const res = await t.inject({ method: 'POST', url: `/api/${account.id}/tasks`, headers: account.headers, payload })
    if (res.statusCode !== 201) throw new Error(`classic create failed: ${res.statusCode} ${res.body}`)
    return res.json()
  }
  const readTask = async (account: Account, id: string): Promise<Task> => {
    const res = await t.inject({ url: `/api/v1/tasks/${id}`, headers: account.headers })
    expect(res.statusCode).toBe(200)
    return res.json()
  }

  describe('refusals', () => {
    it('answers 401 problem+json without credentials, with a bad token, and with a garbage ticket', async () => {
      asProblem(await get(port, '/api/v1/events'), 401)
      asProblem(await get(port, '/api/v1/events', { authorization: 'Bearer not-a-jwt' }), 401)
      asProblem(await get(port, '/api/v1/events?ticket=garbage-ticket-that-was-never-issued'), 401)
    })

    it('answers 400 for a malformed Last-Event-ID or since', async () => {
      const alice = await t.signUp()
      asProblem(await get(port, '/api/v1/events', { ...alice.headers, 'last-event-id': 'nonsense' }), 400)
      asProblem(await get(port, '/api/v1/events?since=nonsense', alice.headers), 400)
    })
  })

  describe('live delivery', () => {
    it('starts at the present and delivers v1 and classic writes in order, each with an id', async () => {
      const alice = await t.signUp()
      const before = await t.createTask(alice, { title: 'Before connecting' })
      const stream = await open(alice)
      expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/)

      const latencies: number[] = []
      const timed = async <T>(write: () => Promise<T>): Promise<{ result: T, event: SseEvent }> => {
        const started = performance.now()
        const result = await write()
        const event = await stream.nextEvent(2_000)
        latencies.push(event.at - started)
        return { result, event }
      }

      // v1 create, patch, complete, delete
      const created = await timed(() => t.createTask(alice, { title: 'Live', tags: ['a'] }))
      expect(created.event.event).toBe('task.upsert')
      expect(created.event.id).toBeTruthy()
      expect(json(created.event)).toEqual(created.result)

      const patched = await timed(() => patch(alice, created.result.id, { title: 'Live, renamed' }))
      expect(patched.event.event).toBe('task.upsert')
      expect(json(patched.event)).toEqual(patched.result)
      expect(json(patched.event).version).toBe(2)

      const completed = await timed(() => patch(alice, created.result.id, { completed: true }))
      expect(json(completed.event)).toMatchObject({ id: created.result.id, completed: true, version: 3 })

      const deleteStarted = Date.now()
      const deleted = await timed(() => remove(alice, created.result.id))
      expect(deleted.event.event).toBe('task.delete')
      const tombstone = json(deleted.event)
      expect(Object.keys(tombstone).sort()).toEqual(['deletedAt', 'id'])
      expect(tombstone.id).toBe(created.result.id)
      expect(Math.abs(Date.parse(tombstone.deletedAt) - deleteStarted)).toBeLessThan(10_000)

      // the classic route feeds the same stream
      const classic = await timed(() => createClassic(alice, { title: 'Classic', description: 'old front end' }))
      expect(classic.event.event).toBe('task.upsert')
      expect(json(classic.event)).toMatchObject({ id: classic.result.id, title: 'Classic', description: 'old front end', version: 1 })
      expect(json(classic.event)).toEqual(await readTask(alice, classic.result.id))

      const classicPut = await timed(async () => {
        const res = await t.inject({ method: 'PUT', url: `/api/${alice.id}/tasks/${classic.result.id}`, headers: alice.headers, payload: { title: 'Classic, replaced', completed: true } })
        expect(res.statusCode).toBe(200)
      })
      expect(json(classicPut.event)).toMatchObject({ id: classic.result.id, title: 'Classic, replaced', completed: true, version: 2 })

      const classicDelete = await timed(async () => {
        const res = await t.inject({ method: 'DELETE', url: `/api/${alice.id}/tasks/${classic.result.id}`, headers: alice.headers })
        expect(res.statusCode).toBeLessThan(300)
      })
      expect(classicDelete.event.event).toBe('task.delete')
      expect(json(classicDelete.event).id).toBe(classic.result.id)

      const all = stream.events
      expect(all.every((e) => typeof e.id === 'string' && e.id.length > 0)).toBe(true)
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length)
      expect(all.map((e) => json(e).id)).not.toContain(before.id)
      await stream.expectQuiet(200)
      stream.close()

      console.log(`[${target.name}] write-to-delivery latency over ${latencies.length} writes (request start to event): ` +
        `median ${median(latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`)
    })
  })

  describe('resume', () => {
    it.each([
      ['Last-Event-ID', (id: string) => ({ path: '/api/v1/events', headers: { 'last-event-id': id } })],
      ['?since=', (id: string) => ({ path: `/api/v1/events?since=${encodeURIComponent(id)}`, headers: {} })],
    ])('with %s delivers exactly the changes missed while disconnected', async (_, resume) => {
      const alice = await t.signUp()
      const first = await open(alice)
      const a = await t.createTask(alice, { title: 'A' })
      const b = await t.createTask(alice, { title: 'B' })
      const c = await t.createTask(alice, { title: 'C' })
      const seen = await first.nextEvents(3)
      expect(seen.map(summary)).toEqual([`upsert ${a.id}@1`, `upsert ${b.id}@1`, `upsert ${c.id}@1`])
      const lastId = first.lastId!
      first.close()
      await first.waitEnd(2_000)

      // while disconnected
      const d = await t.createTask(alice, { title: 'D' })
      const a2 = await patch(alice, a.id, { title: 'A, renamed' })
      await remove(alice, b.id)
      const e = await createClassic(alice, { title: 'E' })
      const a3 = await patch(alice, a.id, { completed: true })

      const { path, headers } = resume(lastId)
      const second = await open(alice, path, headers)
      // Each task once, in its latest state, in the order of its last change.
      const missed = await second.nextEvents(4)
      expect(missed.map(summary)).toEqual([`upsert ${d.id}@1`, `task.delete ${b.id}`, `upsert ${e.id}@1`, `upsert ${a.id}@3`])
      expect(json(missed[3]!)).toEqual(a3)
      expect(a2.version).toBe(2)
      await second.expectQuiet(300)

      // and live again afterwards, after the last missed one
      const f = await t.createTask(alice, { title: 'F' })
      expect(summary(await second.nextEvent())).toBe(`upsert ${f.id}@1`)
      second.close()

      // No id twice across both connections; the client's copy equals the server's.
      const all = [...seen, ...missed]
      expect(new Set(all.map((ev) => ev.id)).size).toBe(all.length)
      const local = new Map<string, Task>()
      for (const ev of [...all, second.events.at(-1)!]) {
        if (ev.event === 'task.upsert') local.set(json(ev).id, json(ev))
        else local.delete(json(ev).id)
      }
      const server = (await t.inject({ url: '/api/v1/tasks?limit=100', headers: alice.headers })).json().items as Task[]
      expect(new Map(server.map((task) => [task.id, task]))).toEqual(local)
    })

    it('resumes with nothing missed or repeated when the client drops mid-way through concurrent writes', async () => {
      const alice = await t.signUp()
      const first = await open(alice)
      const tasks = await Promise.all(Array.from({ length: 4 }, (_, i) => t.createTask(alice, { title: `Task ${i}` })))
      await first.nextEvents(4)
      // Writes keep going while the client disconnects part-way.
      const writes = (async () => {
        for (let round = 0; round < 5; round++) {
          for (const task of tasks) await patch(alice, task.id, { title: `${task.title} r${round}` })
          if (round === 2) await remove(alice, tasks[0]!.id)
          if (round === 2) tasks.shift()
        }
      })()
      await first.waitFor(() => first.events.length >= 7, 5_000, 'some events during the writes')
      first.close()
      const before = first.events.slice()
      const lastId = before.at(-1)!.id!
      await writes

      const second = await open(alice, '/api/v1/events', { 'last-event-id': lastId })
      // Everything after lastId arrives; the stream then falls quiet.
      await sleep(500)
      const after = second.events.slice()
      expect(after.length).toBeGreaterThan(0)
      const all = [...before, ...after]

      expect(new Set(all.map((ev) => ev.id)).size).toBe(all.length)
      // A task's version never goes back. (An event carries the task's state when the stream reads
      // it, which may already include a later change, so under concurrent writes the same state
      // can come twice; count it.)
      const versions = new Map<string, number>()
      let repeats = 0
      for (const ev of all) {
        if (ev.event !== 'task.upsert') continue
        const { id, version } = json(ev)
        expect(version, `task ${id} went from version ${versions.get(id)} to ${version}`).toBeGreaterThanOrEqual(versions.get(id) ?? 0)
        if (version === versions.get(id)) repeats++
        versions.set(id, version)
      }
      console.log(`[${target.name}] resume during concurrent writes: ${before.length} events before the drop, ${after.length} after; same state sent twice: ${repeats}`)
      const local = new Map<string, Task>()
      for (const ev of all) {
        if (ev.event === 'task.upsert') local.set(json(ev).id, json(ev))
        else local.delete(json(ev).id)
      }
      const server = (await t.inject({ url: '/api/v1/tasks?limit=100', headers: alice.headers })).json().items as Task[]
      expect(new Map(server.map((task) => [task.id, task]))).toEqual(local)
      second.close()
    })

    it('hands out event ids that GET /api/v1/sync?since= accepts, with the same changes after them', async () => {
      const alice = await t.signUp()
      const stream = await open(alice)
      const a = await t.createTask(alice, { title: 'A' })
      const [first] = await stream.nextEvents(1)
      // One write at a time, each seen live before the next (a stream reading several at once
      // would rightly send each task once).
      const live: SseEvent[] = []
      const b = await t.createTask(alice, { title: 'B' })
      live.push(await stream.nextEvent())
      await patch(alice, a.id, { title: 'A2' })
      live.push(await stream.nextEvent())
      await remove(alice, b.id)
      live.push(await stream.nextEvent())
      const c = await createClassic(alice, { title: 'C' })
      live.push(await stream.nextEvent())
      expect(live.map(summary)).toEqual([`upsert ${b.id}@1`, `upsert ${a.id}@2`, `task.delete ${b.id}`, `upsert ${c.id}@1`])
      stream.close()

      const res = await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(first!.id!)}`, headers: alice.headers })
      expect(res.statusCode).toBe(200)
      const page = res.json()
      expect(page.hasMore).toBe(false)
      // Coalesced per page: b once (its tombstone), a in its latest state, c.
      expect(page.changes.map((ch: any) => ch.op === 'upsert' ? `upsert ${ch.task.id}@${ch.task.version}` : `task.delete ${ch.id}`))
        .toEqual([`upsert ${a.id}@2`, `task.delete ${b.id}`, `upsert ${c.id}@1`])

      // The last event's id is as good as the page's cursor: nothing after either.
      const fromLast = await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(live.at(-1)!.id!)}`, headers: alice.headers })
      expect(fromLast.statusCode).toBe(200)
      expect(fromLast.json().changes).toEqual([])
      // and it is still valid after use, on the stream too
      const again = await open(alice, '/api/v1/events', { 'last-event-id': first!.id! })
      expect((await again.nextEvents(3)).map(summary)).toEqual([`upsert ${a.id}@2`, `task.delete ${b.id}`, `upsert ${c.id}@1`])
      again.close()
    })
  })

  describe('tickets', () => {
    it('POST /events/tickets needs a token', async () => {
      expectProblem(await t.inject({ method: 'POST', url: '/api/v1/events/tickets' }), 401)
    })

    it('opens a stream once without Authorization; the same ticket again is a 401', async () => {
      const alice = await t.signUp()
      const res = await t.inject({ method: 'POST', url: '/api/v1/events/tickets', headers: alice.headers })
      expect(res.statusCode).toBe(201)
      const body = res.json()
      expect(body).toEqual({ ticket: expect.any(String), expiresIn: 60 })
      expect(body.ticket.length).toBeGreaterThanOrEqual(20)

      const stream = await open(null, `/api/v1/events?ticket=${encodeURIComponent(body.ticket)}`)
      const task = await t.createTask(alice, { title: 'Via ticket' })
      expect(json(await stream.nextEvent())).toEqual(task)

      asProblem(await get(port, `/api/v1/events?ticket=${encodeURIComponent(body.ticket)}`), 401)
      // the first stream is unaffected
      await patch(alice, task.id, { title: 'Still here' })
      expect(json(await stream.nextEvent())).toMatchObject({ id: task.id, version: 2 })
      stream.close()

      asProblem(await get(port, `/api/v1/events?ticket=${encodeURIComponent(body.ticket.slice(0, -2))}xx`), 401)
      asProblem(await get(port, '/api/v1/events'), 401)
    })
  })

  describe('isolation', () => {
    it("shows each user only their own changes, and refuses another user's cursor with 400", async () => {
      const alice = await t.signUp()
      const bob = await t.signUp()
      const aliceStream = await open(alice)
      const bobStream = await open(bob)

      const aliceEvents: SseEvent[] = []
      const bobEvents: SseEvent[] = []
      const forAlice = await t.createTask(alice, { title: 'Alice only' })
      aliceEvents.push(await aliceStream.nextEvent())
      const forBob = await t.createTask(bob, { title: 'Bob only' })
      bobEvents.push(await bobStream.nextEvent())
      await patch(alice, forAlice.id, { title: 'Alice again' })
      aliceEvents.push(await aliceStream.nextEvent())
      await createClassic(bob, { title: 'Bob classic' })
      bobEvents.push(await bobStream.nextEvent())
      await remove(alice, forAlice.id)
      aliceEvents.push(await aliceStream.nextEvent())
      expect(aliceEvents.map((ev) => json(ev).id)).toEqual([forAlice.id, forAlice.id, forAlice.id])
      expect(json(bobEvents[0]!)).toEqual(forBob)
      expect(json(bobEvents[1]!).title).toBe('Bob classic')
      await Promise.all([aliceStream.expectQuiet(300), bobStream.expectQuiet(0)])

      const aliceCursor = aliceEvents[0]!.id!
      const lastEventId = asProblem(await get(port, '/api/v1/events', { ...bob.headers, 'last-event-id': aliceCursor }), 400)
      expect(JSON.stringify(lastEventId)).not.toContain(forAlice.id)
      asProblem(await get(port, `/api/v1/events?since=${encodeURIComponent(aliceCursor)}`, bob.headers), 400)
      expectProblem(await t.inject({ url: `/api/v1/sync?since=${encodeURIComponent(aliceCursor)}`, headers: bob.headers }), 400)
      // still valid for alice
      const resumed = await open(alice, '/api/v1/events', { 'last-event-id': aliceCursor })
      expect((await resumed.nextEvents(1)).map(summary)).toEqual([`task.delete ${forAlice.id}`])
      resumed.close()
      aliceStream.close()
      bobStream.close()
    })
  })

  describe('heartbeat', () => {
    it('sends a comment on an idle stream', async () => {
      const fast = await buildTestApp(target, { database: t.database, eventHeartbeatMs: 200 })
      try {
        await fast.app.listen({ port: 0, host: '127.0.0.1' })
        const alice = await fast.signUp()
        const stream = asStream(await get(portOf(fast.app), '/api/v1/events', alice.headers))
        // at least two heartbeats, besides any comment sent on connecting
        await stream.waitFor(() => stream.comments.length >= 3, 2_000, 'heartbeat comments')
        expect(stream.events).toEqual([])
        stream.close()
      } finally {
        await fast.close()
      }
    })
  })

  describe('lifetime', () => {
    it("ends a deleted user's streams within 2 s", async () => {
      const alice = await t.signUp()
      const one = await open(alice)
      const two = await open(alice)
      const bob = await t.signUp()
      const bystander = await open(bob)
      await t.createTask(alice, { title: 'Soon gone' })
      await one.nextEvents(1)
      await two.nextEvents(1)

      const res = await t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: alice.headers, payload: { password: PASSWORD } })
      expect(res.statusCode).toBe(204)
      const started = performance.now()
      await Promise.all([one.waitEnd(2_000), two.waitEnd(2_000)])
      console.log(`[${target.name}] deleted user's streams ended after ${(performance.now() - started).toFixed(0)} ms`)

      // Another user's stream is untouched; the deleted user's token no longer opens one.
      expect(bystander.ended).toBe(false)
      const task = await t.createTask(bob, { title: 'Bob carries on' })
      expect(json(await bystander.nextEvent())).toEqual(task)
      bystander.close()
      asProblem(await get(port, '/api/v1/events', alice.headers), 401)
    })

    it('ends a stream when its access token expires, after a reauth event; the client resumes missing nothing', async () => {
      const alice = await t.signUp()
      const now = Math.floor(Date.now() / 1000)
      const shortLived = await new SignJWT({ sid: sessionIdOf(alice.accessToken) })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(alice.id)
        .setIssuer(t.keys.issuer)
        .setAudience(t.keys.audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 2)
        .setJti(randomUUID())
        .sign(t.keys.secret)
      const stream = asStream(await get(port, '/api/v1/events', { authorization: `Bearer ${shortLived}` }))
      const before = await t.createTask(alice, { title: 'Before expiry' })
      const [seen] = await stream.nextEvents(1)
      expect(json(seen!)).toEqual(before)
      const [last] = await stream.nextEvents(1, 5_000)
      expect(last!.event).toBe('reauth')
      expect(JSON.parse(last!.data)).toEqual({ reason: 'expired' })
      await stream.waitEnd(1_000)
      // Meanwhile another device wrote; the client comes back with a fresh token and its last id.
      const after = await t.createTask(alice, { title: 'After expiry' })
      const resumed = asStream(await get(port, '/api/v1/events', { ...alice.headers, 'last-event-id': seen!.id! }))
      expect(json((await resumed.nextEvents(1))[0]!)).toEqual(after)
      resumed.close()
    })

    it('lets app.close() finish within 2 s with streams open, ending them', async () => {
      const other = await buildTestApp(target, { database: t.database })
      let closed = false
      try {
        await other.app.listen({ port: 0, host: '127.0.0.1' })
        const alice = await other.signUp()
        const streams = [
          asStream(await get(portOf(other.app), '/api/v1/events', alice.headers)),
          asStream(await get(portOf(other.app), '/api/v1/events', alice.headers)),
        ]
        await other.createTask(alice, { title: 'Before close' })
        for (const s of streams) await s.nextEvents(1)

        const started = performance.now()
        const closing = other.app.close()
        const outcome = await Promise.race([closing.then(() => 'closed'), sleep(2_000).then(() => 'timeout')])
        const took = performance.now() - started
        expect(outcome, 'app.close() with open streams').toBe('closed')
        closed = true
        console.log(`[${target.name}] app.close() with 2 open streams took ${took.toFixed(0)} ms`)
        await Promise.all(streams.map((s) => s.waitEnd(500)))
      } finally {
        if (!closed) await other.close().catch(() => {})
      }
    })
  })

  describe('across processes', () => {
    it.skipIf(target.name !== 'postgres')('delivers a write through one instance to a stream on another, and catches up after a lost LISTEN connection', async () => {
      const url = t.databaseUrl!
      const database = await openPostgres({ url, poolSize: 5 })
      const b = await buildTestApp(target, { database })
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      try {
        await b.app.listen({ port: 0, host: '127.0.0.1' })
        const alice = await t.signUp() // through A
        const stream = asStream(await get(portOf(b.app), '/api/v1/events', alice.headers))

        // A -> B, live
        const startedA = performance.now()
        const first = await t.createTask(alice, { title: 'Written through A' })
        const firstEvent = await stream.nextEvent(1_000)
        expect(json(firstEvent)).toEqual(first)
        console.log(`[postgres] write through A to delivery on B: ${(firstEvent.at - startedA).toFixed(1)} ms`)

        // Kill every LISTEN connection on this database, then write during the outage.
        const killed = await admin.query(
          "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'taskbase-listen' and datname = current_database()")
        expect(killed.rows.length).toBeGreaterThanOrEqual(1)
        expect(killed.rows.every((r) => r.ok === true)).toBe(true)
        const outageStarted = performance.now()
        const duringOutage = await t.createTask(alice, { title: 'During the outage' })
        const patched = await patch(alice, first.id, { title: 'Renamed during the outage' })

        const caughtUp = await stream.nextEvents(2, 5_000)
        console.log(`[postgres] catch-up on B after pg_terminate_backend: ${(caughtUp.at(-1)!.at - outageStarted).toFixed(0)} ms`)
        expect(caughtUp.map(summary)).toEqual([`upsert ${duringOutage.id}@1`, `upsert ${first.id}@2`])
        expect(json(caughtUp[1]!)).toEqual(patched)

        // The listener is back: live again within a second.
        const reconnected = await admin.query(
          "select count(*)::int as n from pg_stat_activity where application_name = 'taskbase-listen' and datname = current_database()")
        expect(reconnected.rows[0].n).toBeGreaterThanOrEqual(1)
        const after = await t.createTask(alice, { title: 'After reconnect' })
        expect(json(await stream.nextEvent(1_000))).toEqual(after)
        await stream.expectQuiet(500)
        expect(new Set(stream.events.map((ev) => ev.id)).size).toBe(stream.events.length)
        expect(stream.events.map(summary)).toEqual([
          `upsert ${first.id}@1`, `upsert ${duringOutage.id}@1`, `upsert ${first.id}@2`, `upsert ${after.id}@1`,
        ])
        stream.close()
      } finally {
        await admin.end()
        await b.close()
        await database.close()
      }
    })
  })
})
