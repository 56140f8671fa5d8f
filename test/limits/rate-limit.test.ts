import type { LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { statement } from '../../src/db/sql.js'
import { batchedCounter, rateLimitQueries } from '../../src/limits/rate-limit.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, uniqueEmail, type TestApp } from '../helpers.js'

const RATE_LIMITED = 'urn:problem-type:taskbase:rate-limited'

/** A distinct documentation address (RFC 5737) per use, so tests sharing a database never share a counter. */
let addressCounter = 0
const nextAddress = () => `198.51.100.${++addressCounter}`

/** Asserts a 429 problem with the headers a client needs to back off; returns Retry-After. */
function expectLimited (res: LightMyRequestResponse, windowSeconds: number): number {
  const problem = expectProblem(res, 429)
  expect(problem.type).toBe(RATE_LIMITED)
  expect(res.headers['ratelimit-remaining']).toBe('0')
  const retryAfter = Number(res.headers['retry-after'])
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds)
  return retryAfter
}

describe('rate-limit configuration', () => {
  it('is on by default: 10 failed logins in 15 minutes, 100 auth requests and 1200 API requests a minute', () => {
    expect(loadConfig({}).rateLimits).toEqual({ loginFailures: 10, loginWindowSeconds: 900, authPerMinute: 100, apiPerMinute: 1200 })
    expect(loadConfig({}).trustProxy).toBe(false)
  })

  it('takes 0 as off, and refuses values that are not whole numbers, naming each variable', () => {
    expect(loadConfig({ RATE_LIMIT_LOGIN_FAILURES: '0', RATE_LIMIT_AUTH_PER_MINUTE: '0', RATE_LIMIT_API_PER_MINUTE: '0' }).rateLimits)
      .toMatchObject({ loginFailures: 0, authPerMinute: 0, apiPerMinute: 0 })
    let error: unknown
    try {
      loadConfig({ RATE_LIMIT_LOGIN_FAILURES: '-1', RATE_LIMIT_LOGIN_WINDOW_SECONDS: '0', RATE_LIMIT_AUTH_PER_MINUTE: 'lots', RATE_LIMIT_API_PER_MINUTE: '1.5' })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    for (const name of ['RATE_LIMIT_LOGIN_FAILURES', 'RATE_LIMIT_LOGIN_WINDOW_SECONDS', 'RATE_LIMIT_AUTH_PER_MINUTE', 'RATE_LIMIT_API_PER_MINUTE']) {
      expect((error as ConfigError).problems.some((p) => p.startsWith(name))).toBe(true)
    }
  })

  it('reads TRUST_PROXY as true, false, or a list of proxy addresses, and refuses anything else', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true)
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false)
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, loopback,::1' }).trustProxy).toEqual(['10.0.0.0/8', 'loopback', '::1'])
    expect(() => loadConfig({ TRUST_PROXY: 'yes' })).toThrow(/TRUST_PROXY/)
    expect(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY/)
    expect(() => loadConfig({ TRUST_PROXY: '2' })).toThrow(/TRUST_PROXY/) // Fastify 5.12 ignores hop counts
  })
})

describe.each(testDatabases)('rate limits on $name', (target) => {
  /** The first app owns the database; every other app of this file is built on it. */
  let first: TestApp
  const apps: TestApp[] = []
  const build = async (env: Record<string, string>) => {
    const t = await buildTestApp(target, { database: first.database, env })
    apps.push(t)
    return t
  }
  beforeAll(async () => { first = await buildTestApp(target) })
  afterAll(async () => {
    for (const t of apps) await t.close()
    await first.close()
  })

  const login = (t: TestApp, email: string, password: string, remoteAddress = '127.0.0.1', headers: Record<string, string> = {}) =>
    t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress, headers })
  /** Ends every live window of the keys matching `pattern`, as if the clock had moved past it. */
  const endWindows = (pattern: string) => first.database.query(
    statement("update rate_limits set reset_at = now() - interval '1 second' where key like $1"), [pattern])
  /** The stored counters of the keys matching `pattern`. */
  const counters = (pattern: string) => first.database.query<{ key: string, count: number }>(
    statement('select key, count from rate_limits where key like $1 order by key'), [pattern])

  describe('auth requests per client address', () => {
    it('answers 429 with Retry-After past the limit, counts every auth route, and leaves other addresses alone', async () => {
      const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '3' })
      const address = nextAddress()
      const remaining: string[] = []
      for (const url of ['/api/v1/auth/register', '/api/v1/auth/refresh', '/api/v1/auth/logout']) {
        const res = await t.inject({ method: 'POST', url, payload: {}, remoteAddress: address }) // 400s count too
        expect(res.statusCode).toBe(400)
        expect(res.headers['ratelimit-limit']).toBe('3')
        remaining.push(String(res.headers['ratelimit-remaining']))
      }
      expect(remaining).toEqual(['2', '1', '0'])
      const limited = await login(t, uniqueEmail(), PASSWORD, address)
      expectLimited(limited, 60)
      expect(limited.headers['ratelimit-limit']).toBe('3')

      const elsewhere = await t.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email: uniqueEmail(), password: PASSWORD }, remoteAddress: nextAddress() })
      expect(elsewhere.statusCode).toBe(201)
      expect(elsewhere.headers['ratelimit-remaining']).toBe('2')
    })

    it('lets the address in again once the window has ended, with a fresh count', async () => {
      const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '2' })
      const address = nextAddress()
      for (let i = 0; i < 2; i++) await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress: address })
      expectLimited(await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress: address }), 60)
      await endWindows(`auth:ip:${address}`)
      const again = await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress: address })
      expect(again.statusCode).toBe(400)
      expect(again.headers['ratelimit-remaining']).toBe('1')
    })
  })

  describe('failed logins', () => {
    it('limits one account from any address, and refuses even the right password until the window ends', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '3' })
      const account = await t.signUp()
      const remaining: string[] = []
      for (let i = 0; i < 3; i++) {
        const res = await login(t, account.email, 'not the password', nextAddress())
        expectProblem(res, 401)
        remaining.push(String(res.headers['ratelimit-remaining']))
      }
      expect(remaining).toEqual(['2', '1', '0'])
      // The email is one account whatever its case.
      const right = await login(t, account.email.toUpperCase(), PASSWORD, nextAddress())
      expect(expectLimited(right, 900)).toBeGreaterThan(800)

      const other = await t.signUp()
      expect((await login(t, other.email, PASSWORD, nextAddress())).statusCode).toBe(200)

      await endWindows(`login:user:${account.id}`)
      expect((await login(t, account.email, PASSWORD, nextAddress())).statusCode).toBe(200)
    })

    it('limits one address across accounts, unknown emails included', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '3' })
      const account = await t.signUp()
      const address = nextAddress()
      for (let i = 0; i < 3; i++) expectProblem(await login(t, uniqueEmail('nobody'), PASSWORD, address), 401)
      expectLimited(await login(t, account.email, PASSWORD, address), 900)
      expect((await login(t, account.email, PASSWORD, nextAddress())).statusCode).toBe(200)
    })

    it('counts failures only: successful logins leave the count where it was', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '3' })
      const account = await t.signUp()
      const address = nextAddress()
      for (let i = 0; i < 2; i++) expectProblem(await login(t, account.email, 'not the password', address), 401)
      for (let i = 0; i < 5; i++) {
        const res = await login(t, account.email, PASSWORD, address)
        expect(res.statusCode).toBe(200)
        expect(res.headers['ratelimit-remaining']).toBe('1')
      }
      expectProblem(await login(t, account.email, 'not the password', address), 401) // the third failure
      expectLimited(await login(t, account.email, PASSWORD, address), 900)
    })

    it('lets at most the limit of 60 parallel wrong guesses check the password; the rest are 429', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '10' })
      const account = await t.signUp()
      const answers = await Promise.all(Array.from({ length: 60 }, () => login(t, account.email, 'not the password', nextAddress())))
      const statuses = answers.map((r) => r.statusCode)
      expect(statuses.filter((s) => s === 401)).toHaveLength(10)
      expect(statuses.filter((s) => s === 429)).toHaveLength(50)
      expectLimited(await login(t, account.email, PASSWORD, nextAddress()), 900)
    })

    it('counts wrong passwords behind a token (password change, account deletion) against the account', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '3' })
      const account = await t.signUp()
      const change = (currentPassword: string) => t.inject({
        method: 'POST', url: '/api/v1/users/me/password', headers: account.headers, payload: { currentPassword, newPassword: 'another good password' },
      })
      expectProblem(await change('wrong one'), 403)
      expectProblem(await change('wrong two'), 403)
      expectProblem(await t.inject({ method: 'DELETE', url: '/api/v1/users/me', headers: account.headers, payload: { password: 'wrong three' } }), 403)
      // Three failures: the right password is refused too, behind the token and at login.
      expectLimited(await change(PASSWORD), 900)
      expectLimited(await login(t, account.email, PASSWORD, nextAddress()), 900)
      expect((await t.inject({ url: '/api/v1/users/me', headers: account.headers })).statusCode).toBe(200) // the account is intact
    })

    it('counts a spelling the database matches to the account (a Unicode İ for i) against that account', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '3' })
      const account = await t.signUp(`ali-${Date.now()}@example.com`)
      for (let i = 0; i < 3; i++) expectProblem(await login(t, account.email, 'not the password', nextAddress()), 401)
      const variant = account.email.replace('i', '\u0130')
      const [match] = await first.database.query<{ same: boolean }>(statement('select lower($1::text) = lower($2::text) as same'), [variant, account.email])
      const res = await login(t, variant, PASSWORD, nextAddress())
      // Where the database takes the variant for the account, it shares the account's counter;
      // elsewhere it is another, unknown email. Either way it never signs in past the limit.
      if (match!.same) expectLimited(res, 900)
      else expectProblem(res, 401)
    })

    it('is never a lockout: the window ends by the clock and the account signs in again', async () => {
      const t = await build({ RATE_LIMIT_LOGIN_FAILURES: '2', RATE_LIMIT_LOGIN_WINDOW_SECONDS: '1' })
      const account = await t.signUp()
      const address = nextAddress()
      for (let i = 0; i < 2; i++) expectProblem(await login(t, account.email, 'not the password', address), 401)
      expect(expectLimited(await login(t, account.email, PASSWORD, address), 1)).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, 1100))
      expect((await login(t, account.email, PASSWORD, address)).statusCode).toBe(200)
    })
  })

  describe('API requests per user', () => {
    it('shares one budget between /api/v1 and the classic /api, per user', async () => {
      const t = await build({ RATE_LIMIT_API_PER_MINUTE: '3' })
      const alice = await t.signUp()
      const bob = await t.signUp()
      const first = await t.inject({ url: '/api/v1/tasks', headers: alice.headers })
      expect(first.statusCode).toBe(200)
      expect(first.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '2' })
      expect((await t.inject({ url: `/api/${alice.id}/tasks`, headers: alice.headers })).statusCode).toBe(200)
      expect((await t.inject({ url: '/api/v1/users/me', headers: alice.headers })).statusCode).toBe(200)
      expectLimited(await t.inject({ url: '/api/v1/tasks', headers: alice.headers }), 60)
      expectLimited(await t.inject({ url: `/api/${alice.id}/tasks`, headers: alice.headers }), 60)
      expect((await t.inject({ url: '/api/v1/tasks', headers: bob.headers })).statusCode).toBe(200)

      await endWindows(`api:user:${alice.id}`)
      expect((await t.inject({ url: '/api/v1/tasks', headers: alice.headers })).statusCode).toBe(200)
    })

    it('counts far from the limit in memory, and writes them to the shared counter on the next flush', async () => {
      const key = `api:user:${crypto.randomUUID()}`
      const counter = batchedCounter(rateLimitQueries(first.database), 100, 60, 60_000) // no flush in this test
      const stored = async () => (await counters(key))[0]?.count ?? 0
      for (let i = 1; i <= 30; i++) expect((await counter.hit(key)).count).toBe(i)
      expect(await stored()).toBe(1) // the first hit, of a key not seen yet, went to the database; the rest wait
      await counter.close()
      expect(await stored()).toBe(30)
    })

    it('counts exactly while a flush is in flight, in memory and at the database', async () => {
      const key = `api:user:${crypto.randomUUID()}`
      const queries = rateLimitQueries(first.database)
      // Holds the flush's statement until released, so the next hits really land while it runs.
      let flushStarted!: () => void
      const started = new Promise<void>((resolve) => { flushStarted = resolve })
      let release!: () => void
      const released = new Promise<void>((resolve) => { release = resolve })
      const held = { ...queries,
        hit: async (...args: Parameters<typeof queries.hit>) => {
          if (Array.isArray(args[2]) && args[2][0] === 2) { flushStarted(); await released }
          return queries.hit(...args)
        } }
      const counter = batchedCounter(held, 10, 60, 5)
      try {
        expect((await counter.hit(key)).count).toBe(1) // a key not seen yet: at the database
        expect((await counter.hit(key)).count).toBe(2)
        expect((await counter.hit(key)).count).toBe(3)
        await started // the flush sends those two and waits
        expect((await counter.hit(key)).count).toBe(4)
        expect((await counter.hit(key)).count).toBe(5)
        const sixth = counter.hit(key) // past half the limit: to the database, after the flush lands
        release()
        expect((await sixth).count).toBe(6)
        expect((await counter.hit(key)).count).toBe(7)
      } finally {
        release()
        await counter.close()
      }
      expect((await counters(key))[0]?.count).toBe(7)
    })

    it('adds the hits counted in memory to the shared counter within a flush', async () => {
      const t = await build({ RATE_LIMIT_API_PER_MINUTE: '100' })
      const alice = await t.signUp()
      const stored = async () => (await counters(`api:user:${alice.id}`))[0]?.count ?? 0
      for (let i = 0; i < 30; i++) expect((await t.inject({ url: '/api/v1/tasks', headers: alice.headers })).statusCode).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 400))
      expect(await stored()).toBe(30)
      const next = await t.inject({ url: '/api/v1/tasks', headers: alice.headers })
      expect(next.headers['ratelimit-remaining']).toBe('69')
    })

    it('documents the 429 on limited routes', async () => {
      const t = await build({ RATE_LIMIT_API_PER_MINUTE: '5', RATE_LIMIT_AUTH_PER_MINUTE: '5' })
      const doc = (await t.inject({ url: '/openapi.json' })).json()
      expect(Object.keys(doc.paths['/api/v1/tasks'].get.responses)).toContain('429')
      expect(Object.keys(doc.paths['/api/v1/auth/register'].post.responses)).toContain('429')
    })
  })

  it('enforces one limit across two app instances on one database', async () => {
    const env = { RATE_LIMIT_AUTH_PER_MINUTE: '4', RATE_LIMIT_LOGIN_FAILURES: '2', RATE_LIMIT_API_PER_MINUTE: '4' }
    const a = await build(env)
    const b = await build(env)
    const address = nextAddress()
    const statuses: number[] = []
    for (const t of [a, b, a, b, a, b]) {
      statuses.push((await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress: address })).statusCode)
    }
    expect(statuses).toEqual([400, 400, 400, 400, 429, 429])

    const account = await a.signUp()
    expectProblem(await login(a, account.email, 'not the password', nextAddress()), 401)
    expectProblem(await login(b, account.email, 'not the password', nextAddress()), 401)
    expectLimited(await login(a, account.email, PASSWORD, nextAddress()), 900)
    expectLimited(await login(b, account.email, PASSWORD, nextAddress()), 900)

    const apiStatuses: number[] = []
    for (const t of [a, b, a, b, a]) apiStatuses.push((await t.inject({ url: '/api/v1/tasks', headers: account.headers })).statusCode)
    expect(apiStatuses).toEqual([200, 200, 200, 200, 429])
  })

  it('is switched off by 0: no counting, no headers, no 429', async () => {
    const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '0', RATE_LIMIT_LOGIN_FAILURES: '0', RATE_LIMIT_API_PER_MINUTE: '0' })
    const account = await t.signUp()
    const address = nextAddress()
    for (let i = 0; i < 15; i++) {
      const res = await login(t, account.email, 'not the password', address)
      expectProblem(res, 401)
      expect(res.headers['ratelimit-limit']).toBeUndefined()
    }
    expect((await login(t, account.email, PASSWORD, address)).statusCode).toBe(200)
    const api = await t.inject({ url: '/api/v1/tasks', headers: account.headers })
    expect(api.statusCode).toBe(200)
    expect(api.headers['ratelimit-limit']).toBeUndefined()
    const rows = await counters(`login:ip:${address}`)
    expect(rows).toEqual([])
  })

  describe('the client address', () => {
    const proxy = '10.0.0.1'
    const hit = (t: TestApp, remoteAddress: string, forwardedFor: string) => t.inject({
      method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress, headers: { 'x-forwarded-for': forwardedFor },
    })

    it('is the socket address without TRUST_PROXY: a forged X-Forwarded-For does not escape the limit', async () => {
      const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '2' })
      const socket = nextAddress()
      expect((await hit(t, socket, '203.0.113.1')).statusCode).toBe(400)
      expect((await hit(t, socket, '203.0.113.2')).statusCode).toBe(400)
      expectLimited(await hit(t, socket, '203.0.113.3'), 60)
    })

    it('comes from X-Forwarded-For when the socket is a proxy TRUST_PROXY names, and only then', async () => {
      const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '2', TRUST_PROXY: proxy })
      const client = nextAddress()
      // Two clients behind the proxy: separate budgets.
      expect((await hit(t, proxy, client)).statusCode).toBe(400)
      expect((await hit(t, proxy, client)).statusCode).toBe(400)
      expectLimited(await hit(t, proxy, client), 60)
      expect((await hit(t, proxy, nextAddress())).statusCode).toBe(400)
      // A client talking to us directly cannot pick its address with the header.
      const direct = nextAddress()
      expect((await hit(t, direct, '203.0.113.7')).statusCode).toBe(400)
      expect((await hit(t, direct, '203.0.113.8')).statusCode).toBe(400)
      expectLimited(await hit(t, direct, '203.0.113.9'), 60)
      // The counter is the client's, not the proxy's.
      const rows = await counters(`auth:ip:${client}`)
      expect(rows).toHaveLength(1)
    })

    it('with TRUST_PROXY=true, takes the address X-Forwarded-For gives', async () => {
      const t = await build({ RATE_LIMIT_AUTH_PER_MINUTE: '1', TRUST_PROXY: 'true' })
      const socket = nextAddress()
      expect((await hit(t, socket, nextAddress())).statusCode).toBe(400)
      expect((await hit(t, socket, nextAddress())).statusCode).toBe(400)
    })
  })

  it('prunes only the counters whose window has ended', async () => {
    const limits = rateLimitQueries(first.database)
    await limits.hit(['prune:ended', 'prune:live'], 60)
    await endWindows('prune:ended')
    expect(await limits.prune()).toBeGreaterThanOrEqual(1)
    const left = await counters('prune:%')
    expect(left.map((r) => r.key)).toEqual(['prune:live'])
  })
})
