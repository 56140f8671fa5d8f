import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { LISTEN_APPLICATION_NAME, type Database } from '../../src/db/client.js'
import { statement } from '../../src/db/sql.js'
import { MAX_BACKLOG_BYTES } from '../../src/events/stream.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, type Account, type TestApp } from '../helpers.js'
import { asProblem, asStream, get, json, portOf, type SseStream } from './sse.js'

/** A database that counts the statements whose text matches each pattern. */
function counting<K extends string> (database: Database, patterns: Record<K, RegExp>) {
  const counts = new Map<K, number>()
  const counted: Database = {
    ...database,
    query: (s, values) => {
      for (const [name, pattern] of Object.entries(patterns) as Array<[K, RegExp]>) {
        if (pattern.test(s.text)) counts.set(name, (counts.get(name) ?? 0) + 1)
      }
      return database.query(s, values)
    },
  }
  return { database: counted, count: (name: K) => counts.get(name) ?? 0, reset: () => counts.clear() }
}

/** The value of one metric in Prometheus text. */
const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN)

/** Opens an event stream whose client never reads: its socket fills up, and stays full. */
function openWithoutReading (port: number, path: string, headers: Record<string, string>): Promise<{ status: number, close: () => void }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, headers })
    request.on('error', reject)
    request.on('response', (response) => {
      response.pause()
      resolve({ status: response.statusCode ?? 0, close: () => { request.destroy(); response.destroy() } })
    })
    request.end()
  })
}

describe.each(testDatabases)('event stream limits on $name', (target) => {
  let t: TestApp
  let port: number
  let statements: ReturnType<typeof counting<'changes' | 'heads'>>
  let drop: () => Promise<void>
  let databaseUrl: string | undefined
  beforeAll(async () => {
    const opened = await target.open()
    drop = opened.drop
    databaseUrl = opened.url
    statements = counting(opened.database, {
      changes: /from tombstones d where d\.user_id/, // a read of a user's change log
      heads: /change_seq as "changeSeq" from users where id = any/, // the log positions of many users
    })
    t = await buildTestApp(target, {
      database: statements.database,
      env: { EVENT_STREAMS_PER_USER: '4', RATE_LIMIT_API_PER_MINUTE: '1000' },
    })
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    port = portOf(t.app)
  })
  afterAll(async () => {
    await t.close()
    await drop()
  })

  const open = async (account: Account, path = '/api/v1/events', headers: Record<string, string> = {}) =>
    asStream(await get(port, path, { ...account.headers, ...headers }))

  it('holds at most EVENT_STREAMS_PER_USER streams per user: the next is a 429 problem; others are not affected', async () => {
    const alice = await t.signUp()
    const bob = await t.signUp()
    const streams: SseStream[] = []
    for (let i = 0; i < 4; i++) streams.push(await open(alice))
    const refused = asProblem(await get(port, '/api/v1/events', alice.headers), 429)
    expect(refused.type).toBe('urn:problem-type:taskbase:rate-limited')
    expect(refused.detail).toContain('4 event streams')
    const bobs = await open(bob)
    streams[0]!.close()
    await sleep(100)
    streams.push(await open(alice)) // a place came free
    for (const s of [...streams, bobs]) s.close()
  })

  it('counts stream opens against the user\'s API limit', async () => {
    const limited = await buildTestApp(target, { database: t.database, env: { RATE_LIMIT_API_PER_MINUTE: '3' } })
    try {
      await limited.app.listen({ port: 0, host: '127.0.0.1' })
      const limitedPort = portOf(limited.app)
      const carol = await limited.signUp()
      for (let i = 0; i < 3; i++) asStream(await get(limitedPort, '/api/v1/events', carol.headers)).close()
      const answer = await get(limitedPort, '/api/v1/events', carol.headers)
      expect(asProblem(answer, 429).type).toBe('urn:problem-type:taskbase:rate-limited')
    } finally {
      await limited.app.close()
    }
  })

  it('reads the change log once per change for all of a user\'s streams, not once per stream', async () => {
    const dave = await t.signUp()
    const task = await t.createTask(dave, { title: 'watched' })
    const streams = [await open(dave), await open(dave), await open(dave), await open(dave)]
    await sleep(200) // their catch-up reads are done
    statements.reset()
    for (let i = 1; i <= 5; i++) {
      await t.inject({ method: 'PATCH', url: `/api/v1/tasks/${task.id}`, headers: dave.headers, payload: { title: `watched ${i}` } })
      for (const s of streams) expect(json(await s.nextEvent()).title).toBe(`watched ${i}`)
    }
    // Four streams, five changes: about five reads (a poll may add one), where it took twenty.
    expect(statements.count('changes')).toBeLessThanOrEqual(7)
    for (const s of streams) s.close()
  })

  it.skipIf(target.name !== 'postgres')('checks every user with a stream in one query when a lost LISTEN connection comes back', async () => {
    const users = [await t.signUp(), await t.signUp(), await t.signUp()]
    const streams = await Promise.all(users.flatMap((u) => [open(u), open(u)]))
    await sleep(200)
    statements.reset()
    const admin = new pg.Client({ connectionString: databaseUrl })
    await admin.connect()
    try {
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()`, [LISTEN_APPLICATION_NAME])
    } finally {
      await admin.end()
    }
    // A change while the connection is down reaches its streams anyway, after the catch-up.
    const task = await t.createTask(users[0]!, { title: 'while reconnecting' })
    for (const s of streams.slice(0, 2)) expect(json(await s.nextEvent(5_000)).id).toBe(task.id)
    // Six streams of three users: one query for all of them (the poll may add one), never one per stream.
    expect(statements.count('heads')).toBeGreaterThanOrEqual(1)
    expect(statements.count('heads')).toBeLessThanOrEqual(2)
    for (const s of streams) s.close()
  })

  it('holds at most ~1 MiB per stream for a client that never reads, whatever its backlog (16 MB here)', async () => {
    const erin = await t.signUp()
    const { cursor } = (await t.inject({ url: '/api/v1/sync', headers: erin.headers })).json()
    // A 16 MB backlog: 1,600 tasks of 10 KB, written straight into the database.
    await t.database.query(statement(`insert into tasks (user_id, title, description)
      select $1, 'backlog ' || g, repeat('x', 10000) from generate_series(1, 1600) g`), [erin.id])
    const clients = await Promise.all(Array.from({ length: 2 }, () =>
      openWithoutReading(port, `/api/v1/events?since=${encodeURIComponent(cursor)}`, erin.headers)))
    expect(clients.map((c) => c.status)).toEqual([200, 200])
    const held = async () => metric((await t.inject({ url: '/metrics' })).body, 'taskbase_event_stream_buffered_bytes')
    // The kernel takes a few MB per socket first; then the server's own buffer is all that grows.
    const deadline = Date.now() + 20_000
    while (await held() === 0 && Date.now() < deadline) await sleep(250)
    await sleep(1_000)
    const stalled = await held()
    await sleep(1_000)
    const later = await held()
    console.log(`[${target.name}] 2 non-reading streams with a 16 MB backlog each hold ${stalled}, then ${later} bytes unsent`)
    expect(stalled).toBeGreaterThan(0) // they did stall
    // Each stream: at most the bound plus one event, whatever its backlog; and it does not grow.
    expect(later).toBeLessThanOrEqual(2 * (MAX_BACKLOG_BYTES + 20_000))
    expect(later).toBeLessThanOrEqual(stalled)
    for (const c of clients) c.close()
  })

  describe('a stream lives no longer than its session', () => {
    it('ends the streams of a session that logs out (event reauth), and only those', async () => {
      const frank = await t.signUp()
      const other = await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: frank.email, password: PASSWORD } })
      const otherSession = asStream(await get(port, '/api/v1/events', { authorization: `Bearer ${other.json().accessToken}` }))
      const stream = await open(frank)
      expect((await t.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken: frank.refreshToken } })).statusCode).toBe(204)
      const [last] = await stream.nextEvents(1)
      expect(last!.event).toBe('reauth')
      expect(json(last!)).toEqual({ reason: 'logout' })
      await stream.waitEnd(1_000)
      await otherSession.expectQuiet(300)
      expect(otherSession.ended).toBe(false)
      otherSession.close()
    })

    it('ends the streams of every other session on a password change, and keeps those of the session that made it', async () => {
      const gina = await t.signUp()
      const other = await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: gina.email, password: PASSWORD } })
      const others = [0, 1].map(async () => asStream(await get(port, '/api/v1/events', { authorization: `Bearer ${other.json().accessToken}` })))
      const streams = await Promise.all(others)
      const own = await open(gina)
      await t.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: gina.headers, payload: { currentPassword: PASSWORD, newPassword: 'a brand new password' } })
      for (const s of streams) {
        expect(json((await s.nextEvents(1))[0]!)).toEqual({ reason: 'revoked' })
        await s.waitEnd(1_000)
      }
      // The session that changed the password goes on: its stream still delivers.
      const task = await t.createTask(gina, { title: 'after the change' })
      expect(json((await own.nextEvents(1))[0]!)).toEqual(task)
      own.close()
    })

    it('ends every stream of the user when a refresh token is reused', async () => {
      const hank = await t.signUp()
      const stream = await open(hank)
      const refresh = (refreshToken: string) => t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } })
      expect((await refresh(hank.refreshToken)).statusCode).toBe(200)
      expectProblem(await refresh(hank.refreshToken), 401) // reuse
      expect(json((await stream.nextEvents(1))[0]!)).toEqual({ reason: 'revoked' })
      await stream.waitEnd(1_000)
    })

    it('ends a stream opened with a ticket when the session that bought the ticket logs out', async () => {
      const ivy = await t.signUp()
      const { ticket } = (await t.inject({ method: 'POST', url: '/api/v1/events/tickets', headers: ivy.headers })).json()
      const stream = asStream(await get(port, `/api/v1/events?ticket=${ticket}`))
      await t.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken: ivy.refreshToken } })
      expect(json((await stream.nextEvents(1))[0]!)).toEqual({ reason: 'logout' })
      await stream.waitEnd(1_000)
    })
  })
})
