import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.js'
import { buildTestApp, expectProblem, PASSWORD, testDatabases, uniqueEmail, type TestApp } from '../helpers.js'

const TOKEN = 'metrics-token-of-the-tests-0123456789'

/** The value of one sample line (`name{labels} value`) in a Prometheus text page, or undefined. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1))
  }
  return undefined
}

describe('metrics configuration', () => {
  it('takes METRICS_TOKEN of at least 16 bytes, and never echoes a short one', () => {
    expect(loadConfig({}).metricsToken).toBeUndefined()
    expect(loadConfig({ METRICS_TOKEN: TOKEN }).metricsToken).toBe(TOKEN)
    expect(() => loadConfig({ METRICS_TOKEN: 'short-secret' })).toThrow(/METRICS_TOKEN must be at least 16 bytes/)
    expect(() => loadConfig({ METRICS_TOKEN: 'short-secret' })).not.toThrow(/short-secret/)
  })
})

describe.each(testDatabases)('GET /metrics on $name', (target) => {
  let t: TestApp
  const scrape = async (app = t) => {
    const res = await app.inject({ url: '/metrics' })
    expect(res.statusCode).toBe(200)
    return res.body
  }
  beforeAll(async () => { t = await buildTestApp(target, { env: { RATE_LIMIT_AUTH_PER_MINUTE: '100' } }) })
  afterAll(() => t.close())

  describe('without METRICS_TOKEN', () => {
    it('answers loopback clients in the Prometheus text format', async () => {
      const res = await t.inject({ url: '/metrics' }) // app.inject's socket is 127.0.0.1
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
      expect((await t.inject({ url: '/metrics', remoteAddress: '::1' })).statusCode).toBe(200)
      expect((await t.inject({ url: '/metrics', remoteAddress: '::ffff:127.0.0.1' })).statusCode).toBe(200)
    })

    it('refuses other addresses, and anything that came through a proxy, with a 403 problem', async () => {
      expectProblem(await t.inject({ url: '/metrics', remoteAddress: '203.0.113.5' }), 403)
      expectProblem(await t.inject({ url: '/metrics', remoteAddress: '10.0.0.2' }), 403)
      expectProblem(await t.inject({ url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.5' } }), 403)
      expectProblem(await t.inject({ url: '/metrics', headers: { forwarded: 'for=203.0.113.5' } }), 403)
    })
  })

  it('with METRICS_TOKEN, answers the bearer of that token from anywhere, and 401 to anyone else', async () => {
    const guarded = await buildTestApp(target, { database: t.database, env: { METRICS_TOKEN: TOKEN } })
    try {
      const remoteAddress = '203.0.113.5'
      expect((await guarded.inject({ url: '/metrics', remoteAddress, headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200)
      for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, 'Bearer ']) {
        const res = await guarded.inject({ url: '/metrics', remoteAddress, headers: authorization === undefined ? {} : { authorization } })
        expectProblem(res, 401)
        expect(res.headers['www-authenticate']).toBe('Bearer')
      }
      // The token replaces the loopback rule: a local scraper needs it too.
      expectProblem(await guarded.inject({ url: '/metrics' }), 401)
    } finally {
      await guarded.close()
    }
  })

  it('counts requests and their durations by route pattern and status, never by raw URL', async () => {
    const account = await t.signUp()
    const task = await t.createTask(account, { title: 'measured' })
    for (let i = 0; i < 3; i++) await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: account.headers })
    await t.inject({ url: '/api/v1/tasks/00000000-0000-4000-8000-000000000000', headers: account.headers })
    await t.inject({ url: '/no/such/route/42' })

    const text = await scrape()
    expect(text).not.toContain(task.id)
    expect(text).not.toContain('/no/such/route')
    const route = { method: 'GET', route: '/api/v1/tasks/:id' }
    expect(sample(text, 'http_requests_total', { ...route, status_code: '200' })).toBe(3)
    expect(sample(text, 'http_requests_total', { ...route, status_code: '404' })).toBe(1)
    expect(sample(text, 'http_requests_total', { route: 'unmatched', status_code: '404' })).toBe(1)
    expect(sample(text, 'http_requests_total', { method: 'POST', route: '/api/v1/auth/register', status_code: '201' })).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'http_request_duration_seconds_count', { ...route, status_code: '200' })).toBe(3)
    expect(sample(text, 'http_request_duration_seconds_bucket', { ...route, status_code: '200', le: '+Inf' })).toBe(3)
    expect(sample(text, 'http_request_duration_seconds_sum', { ...route, status_code: '200' })).toBeGreaterThan(0)
    expect(text).toContain('# TYPE http_request_duration_seconds histogram')
    expect(text).toContain('process_resident_memory_bytes')
  })

  it('counts rate-limited requests by limit', async () => {
    // On t's database, from an address t never used: the counters are shared per database and
    // t's sign-ups came from 127.0.0.1. (A database of its own cost a PGlite, seconds of CPU.)
    const limited = await buildTestApp(target, { database: t.database, env: { RATE_LIMIT_AUTH_PER_MINUTE: '1', RATE_LIMIT_LOGIN_FAILURES: '1' } })
    try {
      const address = '198.51.100.199'
      const email = uniqueEmail()
      const signUp = await limited.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password: PASSWORD }, remoteAddress: address })
      expect(signUp.statusCode).toBe(201) // the one auth request the address may make
      expectProblem(await limited.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: {}, remoteAddress: address }), 429)
      // From two addresses, each within its auth budget: the account's failed-login limit refuses.
      const login = (password: string, remoteAddress: string) => limited.inject({
        method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress,
      })
      expectProblem(await login('not the password', '198.51.100.200'), 401)
      expectProblem(await login(PASSWORD, '198.51.100.201'), 429)
      const text = await scrape(limited)
      expect(sample(text, 'taskbase_rate_limited_total', { limit: 'auth' })).toBe(1)
      expect(sample(text, 'taskbase_rate_limited_total', { limit: 'login_failures' })).toBe(1)
      expect(sample(text, 'http_requests_total', { route: '/api/v1/auth/refresh', status_code: '429' })).toBe(1)
      // Each app has its own registry: t saw none of this.
      expect(sample(await scrape(), 'taskbase_rate_limited_total', { limit: 'auth' })).toBeUndefined()
    } finally {
      await limited.close()
    }
  })

  it('counts the creates of several users that went in one statement', async () => {
    const accounts = await Promise.all(Array.from({ length: 8 }, () => t.signUp()))
    const batched = (text: string) => ({
      batches: sample(text, 'taskbase_task_create_batches_total')!, rows: sample(text, 'taskbase_task_creates_batched_total')!,
    })
    const before = batched(await scrape())
    // Sent together, most creates reach the database together; a round may still trickle in one
    // by one, so send rounds until one went as a batch (the first does, in practice).
    let after = before
    for (let round = 0; round < 5 && after.batches === before.batches; round++) {
      const answers = await Promise.all(accounts.map((account) =>
        t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload: { title: `round ${round}` } })))
      for (const res of answers) expect(res.statusCode).toBe(201)
      after = batched(await scrape())
    }
    expect(after.batches).toBeGreaterThan(before.batches)
    expect(after.rows - before.rows).toBeGreaterThanOrEqual(2 * (after.batches - before.batches))
  })

  it('reports the connection pool and the read connections of a server database, and nothing for the embedded one', async () => {
    const text = await scrape()
    if (target.name === 'postgres') {
      expect(sample(text, 'taskbase_db_pool_max')).toBe(10)
      expect(sample(text, 'taskbase_db_pool_size')).toBeGreaterThanOrEqual(1)
      expect(sample(text, 'taskbase_db_pool_in_use')).toBe(0)
      expect(sample(text, 'taskbase_db_pool_waiting')).toBe(0)
      expect(sample(text, 'taskbase_db_read_connections')).toBeGreaterThanOrEqual(0)
      expect(sample(text, 'taskbase_db_reads_pending')).toBe(0)
    } else {
      expect(text).not.toContain('taskbase_db_pool')
      expect(text).not.toContain('taskbase_db_read')
    }
  })

  it('counts the 503s that a database outage causes', async () => {
    const outage = await buildTestApp(target)
    try {
      const account = await outage.signUp()
      await outage.database.close()
      expectProblem(await outage.inject({ url: '/readyz' }), 503)
      expect((await outage.inject({ url: '/healthz' })).statusCode).toBe(200)
      let outageAnswers = 1
      // A closed pg pool is an outage; a closed PGlite is the process shutting down, not one.
      if (target.name === 'postgres') {
        expectProblem(await outage.inject({ url: '/api/v1/tasks', headers: account.headers }), 503)
        outageAnswers++
      }
      const text = await scrape(outage) // /metrics needs no database
      expect(sample(text, 'taskbase_database_errors_total')).toBe(outageAnswers)
    } finally {
      await outage.close()
    }
  })
})

describe.each(testDatabases)('the request id in problems on $name', (target) => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(target, { env: { RATE_LIMIT_AUTH_PER_MINUTE: '50' } }) })
  afterAll(() => t.close())

  it('puts the request id in `instance` of every problem, as in X-Request-Id', async () => {
    const account = await t.signUp()
    const responses = [
      await t.inject({ url: '/nothing-here' }), // 404 of the not-found handler
      await t.inject({ url: '/api/v1/tasks' }), // 401 of the guard
      await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload: { title: '' } }), // 400
      await t.inject({ url: '/api/v1/tasks/00000000-0000-4000-8000-000000000000', headers: account.headers }), // 404 of a route
      await t.inject({ method: 'POST', url: `/api/${account.id}/tasks`, headers: account.headers, payload: {} }), // classic 422
      await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: uniqueEmail(), password: PASSWORD } }), // 401
    ]
    expect(responses.map((r) => r.statusCode)).toEqual([404, 401, 400, 404, 422, 401])
    for (const res of responses) {
      const problem = expectProblem(res, res.statusCode)
      expect(problem.instance).toBe(res.headers['x-request-id'])
      expect(problem.instance).toMatch(/^[0-9a-f-]{36}$/)
    }
  })

  it("uses the client's own sane X-Request-Id", async () => {
    const res = await t.inject({ url: '/api/v1/tasks', headers: { 'x-request-id': 'front-end-7' } })
    expect(expectProblem(res, 401).instance).toBe('front-end-7')
  })

  it('documents `instance` in the problem schema', async () => {
    const doc = (await t.inject({ url: '/openapi.json' })).json()
    const problem = doc.paths['/api/v1/tasks'].post.responses['400'].content['application/problem+json']
    expect(problem.schema).toEqual({ $ref: '#/components/schemas/Problem' })
    expect(doc.components.schemas.Problem.properties.instance).toBeDefined()
  })
})
