import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { originMatcher } from '../../src/http/cors.js'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'
import { asStream, get, portOf } from '../events/sse.js'

const FRONT_END = 'http://localhost:3000'
const ELSEWHERE = 'https://evil.example'

const preflight = (t: TestApp, url: string, origin: string, method = 'POST') => t.inject({
  method: 'OPTIONS', url, headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type, if-match' },
})

describe('CORS_ORIGINS', () => {
  it('takes exact origins or *, and refuses paths, other schemes and a mix', () => {
    expect(loadConfig({}).corsOrigins).toEqual([])
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example.com, http://localhost:3000' }).corsOrigins)
      .toEqual(['https://app.example.com', 'http://localhost:3000'])
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toEqual(['*'])
    for (const bad of ['https://app.example.com/', 'https://app.example.com/path', 'ftp://x.example', 'localhost:3000', '*,https://a.example', 'null']) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError)
    }
  })

  it('takes a leading *. as every subdomain of a domain, and refuses * anywhere else', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://*.example.com,http://*.localhost:3000,https://app.example.org' }).corsOrigins)
      .toEqual(['https://*.example.com', 'http://*.localhost:3000', 'https://app.example.org'])
    const bad = ['https://app.*.example.com', 'https://*example.com', 'https://*.*.example.com', 'https://**.example.com', 'https://*',
      '*.example.com', 'https://*.example.com/', 'https://*.127.0.0.1', 'https://*.[::1]', 'ftp://*.example.com', 'https://app.example.*']
    for (const entry of bad) {
      expect(() => loadConfig({ CORS_ORIGINS: entry }), entry).toThrow(/CORS_ORIGINS .*start with \*\. to allow every subdomain of a domain \(https:\/\/\*\.example\.com\)/)
    }
  })
})

describe('a CORS_ORIGINS pattern', () => {
  const allowed = originMatcher(['https://*.example.com', 'http://*.localhost:3000'])
  it.each(['https://app.example.com', 'https://a.b.example.com', 'https://xn--bcher-kva.example.com', 'http://app.localhost:3000'])('allows %s', (origin) => {
    expect(allowed(origin)).toBe(true)
  })
  it.each([
    'https://example.com', // the domain itself
    'http://app.example.com', // another scheme
    'https://app.example.com:8443', // another port
    'https://evilexample.com', 'https://app.example.com.evil.net', 'https://evil.net/.example.com', 'https://evil.net:1@x.example.com',
    'https://.example.com', 'http://app.localhost', 'http://app.localhost:30000', 'null',
  ])('does not allow %s', (origin) => {
    expect(allowed(origin)).toBe(false)
  })
})

describe.each(testDatabases)('CORS on $name', (target) => {
  let t: TestApp
  let alice: Account
  beforeAll(async () => {
    t = await buildTestApp(target, { env: { CORS_ORIGINS: `${FRONT_END},https://app.example.com` } })
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    alice = await t.signUp()
  })
  afterAll(() => t.close())

  describe('a preflight from an allowed origin', () => {
    it.each(['/api/v1/tasks', '/api/v1/tasks/00000000-0000-4000-8000-000000000001', '/api/USER/tasks', '/api/v1/events', '/mcp'])('is a 204 for %s with what the front end needs', async (path) => {
      const res = await preflight(t, path.replace('USER', alice.id), FRONT_END)
      expect(res.statusCode).toBe(204)
      expect(res.headers['access-control-allow-origin']).toBe(FRONT_END)
      expect(res.headers['access-control-allow-methods']).toBe('GET, HEAD, POST, PUT, PATCH, DELETE')
      expect(String(res.headers['access-control-allow-headers']).split(', ')).toEqual(
        ['authorization', 'content-type', 'if-match', 'if-none-match', 'idempotency-key', 'last-event-id', 'x-request-id', 'mcp-protocol-version'])
      expect(res.headers['access-control-max-age']).toBe('600')
      expect(res.headers['access-control-allow-credentials']).toBeUndefined()
      expect(res.headers.vary).toContain('Origin')
    })
  })

  it('gives an actual request from an allowed origin its origin and the headers it may read', async () => {
    const res = await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: { ...alice.headers, origin: FRONT_END }, payload: { title: 'cross-origin' } })
    expect(res.statusCode).toBe(201)
    expect(res.headers['access-control-allow-origin']).toBe(FRONT_END)
    expect(String(res.headers['access-control-expose-headers']).split(', ')).toEqual(
      ['ETag', 'Location', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'X-Request-Id', 'Idempotent-Replayed', 'WWW-Authenticate'])
    // Errors too: a front end must be able to read the problem.
    const problem = await t.inject({ url: '/api/v1/tasks', headers: { origin: FRONT_END } })
    expectProblem(problem, 401)
    expect(problem.headers['access-control-allow-origin']).toBe(FRONT_END)
  })

  it('serves the classic routes cross-origin', async () => {
    const res = await t.inject({ url: `/api/${alice.id}/tasks`, headers: { ...alice.headers, origin: FRONT_END } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe(FRONT_END)
  })

  it('gives an origin not on the list no CORS header at all, preflight or not', async () => {
    const pre = await preflight(t, '/api/v1/tasks', ELSEWHERE)
    expect(pre.statusCode).toBe(405)
    const actual = await t.inject({ url: '/api/v1/tasks', headers: { ...alice.headers, origin: ELSEWHERE } })
    expect(actual.statusCode).toBe(200) // the server answers; the browser will not hand it over
    for (const res of [pre, actual]) {
      expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    }
  })

  it('streams events cross-origin, with the CORS headers on the stream', async () => {
    const stream = asStream(await get(portOf(t.app), '/api/v1/events', { ...alice.headers, origin: FRONT_END }))
    expect(stream.response.headers['access-control-allow-origin']).toBe(FRONT_END)
    const task = await t.createTask(alice, { title: 'seen cross-origin' })
    expect(JSON.parse((await stream.nextEvent()).data).id).toBe(task.id)
    stream.close()
  })

  it('answers a subdomain of a CORS_ORIGINS pattern with its own origin, and nothing to the domain itself', async () => {
    const subdomains = await buildTestApp(target, { database: t.database, env: { CORS_ORIGINS: 'https://*.example.com' } })
    try {
      const pre = await preflight(subdomains, '/api/v1/tasks', 'https://tasks.team.example.com')
      expect(pre.statusCode).toBe(204)
      expect(pre.headers['access-control-allow-origin']).toBe('https://tasks.team.example.com')
      expect(pre.headers.vary).toContain('Origin')
      const actual = await subdomains.inject({ url: '/api/v1/tasks', headers: { ...alice.headers, origin: 'https://app.example.com' } })
      expect(actual.statusCode).toBe(200)
      expect(actual.headers['access-control-allow-origin']).toBe('https://app.example.com')
      for (const origin of ['https://example.com', 'http://app.example.com', 'https://app.example.com.evil.net']) {
        const res = await subdomains.inject({ url: '/api/v1/tasks', headers: { ...alice.headers, origin } })
        expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), origin).toEqual([])
      }
    } finally {
      await subdomains.app.close()
    }
  })

  it('answers * with no credentials when CORS_ORIGINS=*', async () => {
    const open = await buildTestApp(target, { database: t.database, env: { CORS_ORIGINS: '*' } })
    try {
      const res = await open.inject({ url: '/healthz', headers: { origin: ELSEWHERE } })
      expect(res.headers['access-control-allow-origin']).toBe('*')
      expect(res.headers['access-control-allow-credentials']).toBeUndefined()
    } finally {
      await open.app.close()
    }
  })

  it('sends no CORS header and answers OPTIONS with 405 when CORS_ORIGINS is unset', async () => {
    const closed = await buildTestApp(target, { database: t.database })
    try {
      const res = await preflight(closed, '/api/v1/tasks', FRONT_END)
      expectProblem(res, 405)
      expect(res.headers['access-control-allow-origin']).toBeUndefined()
    } finally {
      await closed.app.close()
    }
  })
})
