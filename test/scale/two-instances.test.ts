import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openPostgres, type Database } from '../../src/db/client.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, type TestApp } from '../helpers.js'

/**
 * Two taskbase processes on one database must behave as one service: every piece of shared state
 * (refresh-token families, idempotency keys) lives in PostgreSQL, not in a process. On the
 * postgres target the second app has its own pool, as a second process would.
 */
describe.each(testDatabases)('two app instances on one $name database', (target) => {
  let a: TestApp
  let b: TestApp
  let second: Database | undefined
  beforeAll(async () => {
    a = await buildTestApp(target)
    second = a.databaseUrl ? await openPostgres({ url: a.databaseUrl, poolSize: 5 }) : undefined
    b = await buildTestApp(target, { database: second ?? a.database })
  })
  afterAll(async () => {
    await b.app.close()
    await second?.close()
    await a.close()
  })

  it('refuses a deleted user\'s token on the other instance, which had it cached, within a notice (< 1 s)', async () => {
    const account = await a.signUp()
    expect((await b.inject({ url: '/api/v1/users/me', headers: account.headers })).statusCode).toBe(200) // now cached on b
    expect((await a.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: account.headers, payload: { password: PASSWORD } })).statusCode).toBe(204)
    const deadline = Date.now() + 1_000
    let status = 200
    while (status === 200 && Date.now() < deadline) {
      status = (await b.inject({ url: '/api/v1/tasks', headers: account.headers })).statusCode
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(status).toBe(401)
  })

  /** Asks `app` with `headers` until it answers 401, for at most a second; the last status. */
  async function refusedWithinASecond (app: TestApp, headers: Record<string, string>): Promise<number> {
    const deadline = Date.now() + 1_000
    let status = 200
    while (status === 200 && Date.now() < deadline) {
      status = (await app.inject({ url: '/api/v1/users/me', headers })).statusCode
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return status
  }

  it('refuses an ended session\'s access token on the other instance, which had it cached, within a second', async () => {
    const account = await a.signUp()
    const other = (await a.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: account.email, password: PASSWORD } })).json()
    const otherHeaders = { authorization: `Bearer ${other.accessToken}` }
    for (const headers of [account.headers, otherHeaders]) expect((await b.inject({ url: '/api/v1/users/me', headers })).statusCode).toBe(200)
    // Logout through a: b refuses that session's token, and still serves the other session.
    expect((await a.inject({ method: 'POST', url: '/api/v1/auth/logout', payload: { refreshToken: account.refreshToken } })).statusCode).toBe(204)
    expect(await refusedWithinASecond(b, account.headers)).toBe(401)
    expect((await b.inject({ url: '/api/v1/users/me', headers: otherHeaders })).statusCode).toBe(200)
    // A password change through a third session: b refuses the other one too.
    const third = (await a.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: account.email, password: PASSWORD } })).json()
    const changed = await a.inject({ method: 'POST', url: '/api/v1/users/me/password', headers: { authorization: `Bearer ${third.accessToken}` },
      payload: { currentPassword: PASSWORD, newPassword: 'a brand new password' } })
    expect(changed.statusCode).toBe(204)
    expect(await refusedWithinASecond(b, otherHeaders)).toBe(401)
    expect((await b.inject({ url: '/api/v1/users/me', headers: { authorization: `Bearer ${third.accessToken}` } })).statusCode).toBe(200)
  })

  it('detects the reuse of a refresh token rotated on the other instance, and revokes the family on both', async () => {
    const account = await a.signUp()
    const rotated = await a.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: account.refreshToken } })
    expect(rotated.statusCode).toBe(200)
    const reused = await b.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: account.refreshToken } })
    expect(expectProblem(reused, 401).type).toBe('urn:problem-type:taskbase:refresh-token-reused')
    const newest = await a.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: rotated.json().refreshToken } })
    expectProblem(newest, 401)
  })

  it('replays an idempotent create made on the other instance, and races to one task', async () => {
    const account = await a.signUp()
    const headers = { ...account.headers, 'idempotency-key': 'across-instances' }
    const first = await a.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: { title: 'once' } })
    const retry = await b.inject({ method: 'POST', url: '/api/v1/tasks', headers, payload: { title: 'once' } })
    expect(retry.statusCode).toBe(201)
    expect(retry.json().id).toBe(first.json().id)
    expect(retry.headers['idempotent-replayed']).toBe('true')

    const raceHeaders = { ...account.headers, 'idempotency-key': 'race-across-instances' }
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      (i % 2 === 0 ? a : b).inject({ method: 'POST', url: '/api/v1/tasks', headers: raceHeaders, payload: { title: 'raced' } })))
    expect(results.map((r) => r.statusCode)).toEqual(Array(8).fill(201))
    expect(new Set(results.map((r) => r.json().id)).size).toBe(1)
    const list = await b.inject({ url: '/api/v1/tasks?limit=100', headers: account.headers })
    expect(list.json().items.filter((t: { title: string }) => t.title === 'raced')).toHaveLength(1)
  })

  it('serves a task written through one instance to the other at once', async () => {
    const account = await a.signUp()
    const task = await a.createTask(account, { title: 'shared' })
    const read = await b.inject({ url: `/api/v1/tasks/${task.id}`, headers: account.headers })
    expect(read.json()).toEqual(task)
  })
})
