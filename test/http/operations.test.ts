import { hostname } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  buildTestApp, documentedOperations, expectProblem, PASSWORD, protectedOperations, PUBLIC_OPERATIONS, testDatabases, uniqueEmail, type TestApp,
} from '../helpers.js'

describe.each(testDatabases)('operations and errors on $name', (target) => {
  let t: TestApp
  const logLines: string[] = []
  beforeAll(async () => { t = await buildTestApp(target, { logStream: { write: (line) => { logLines.push(line) } } }) })
  afterAll(() => t.close())

  it('answers /healthz and /readyz', async () => {
    const health = await t.inject({ url: '/healthz' })
    expect(health.statusCode).toBe(200)
    expect(health.json()).toEqual({ status: 'ok' })
    const ready = await t.inject({ url: '/readyz' })
    expect(ready.statusCode).toBe(200)
  })

  it('answers an unknown route with a 404 problem', async () => {
    const problem = expectProblem(await t.inject({ url: '/api/v1/nothing-here?token=abc' }), 404)
    expect(problem.detail).toBe('No route for GET /api/v1/nothing-here')
  })

  it('answers 415 for a body that is not JSON, and 400 for an empty JSON body', async () => {
    const account = await t.signUp()
    expectProblem(await t.inject({
      method: 'POST', url: '/api/v1/tasks', headers: { ...account.headers, 'content-type': 'text/plain' }, payload: 'title=x',
    }), 415)
    expectProblem(await t.inject({
      method: 'POST', url: '/api/v1/tasks', headers: { ...account.headers, 'content-type': 'application/json' }, payload: '',
    }), 400)
  })

  it('echoes a sane X-Request-Id and replaces an unsafe one', async () => {
    const kept = await t.inject({ url: '/healthz', headers: { 'x-request-id': 'front-end-42' } })
    expect(kept.headers['x-request-id']).toBe('front-end-42')
    const replaced = await t.inject({ url: '/healthz', headers: { 'x-request-id': 'a b\u0001<script>' } })
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('publishes an OpenAPI 3.1 document in which every operation outside the public few requires a bearer token', async () => {
    const res = await t.inject({ url: '/openapi.json' })
    expect(res.statusCode).toBe(200)
    const doc = res.json()
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' })
    const operations = await documentedOperations(t.app)
    expect(operations.length).toBeGreaterThan(20)
    for (const op of operations) {
      const name = `${op.method} ${op.path}`
      if (PUBLIC_OPERATIONS.has(name)) continue
      expect(op.spec.security, `${name} security`).toContainEqual({ bearerAuth: [] })
      expect(Object.keys(op.spec.responses).some((s) => s.startsWith('4')), `${name} documents errors`).toBe(true)
    }
  })

  it('answers 401 problem+json with a Bearer challenge on every protected operation without a token, and changes nothing', async () => {
    const account = await t.signUp()
    const task = await t.createTask(account, { title: 'untouched' })
    for (const op of await protectedOperations(t.app)) {
      const res = await t.inject({ method: op.method, url: op.url, ...(['POST', 'PUT', 'PATCH'].includes(op.method) && { payload: {} }) })
      expectProblem(res, 401)
      expect(res.headers['www-authenticate'], `${op.method} ${op.path}`).toMatch(/^Bearer\b/)
    }
    expect((await t.inject({ url: `/api/v1/tasks/${task.id}`, headers: account.headers })).json()).toEqual(task)
  })

  it('serves the interactive reference at /docs', async () => {
    const res = await t.inject({ url: '/docs/' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toContain('text/html')
  })

  it('never writes a password, token or Authorization value to the log', async () => {
    const email = uniqueEmail('logged')
    const reg = await t.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password: PASSWORD } })
    const { accessToken, refreshToken } = reg.json()
    await t.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: PASSWORD } })
    await t.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } })
    await t.inject({ url: '/api/v1/tasks', headers: { authorization: `Bearer ${accessToken}` } })
    await t.inject({ url: `/api/v1/tasks?cursor=${accessToken}`, headers: { authorization: `Bearer ${accessToken}` } })
    const log = logLines.join('')
    expect(log).toContain('request completed') // the log is on
    expect(log).not.toContain(PASSWORD)
    expect(log).not.toContain(accessToken)
    expect(log).not.toContain(accessToken.split('.')[2])
    expect(log).not.toContain(refreshToken)
  })

  it('writes one access line per request, with the fields of pino\'s lines and the path without its query', async () => {
    const res = await t.inject({ url: '/healthz?ticket=secret', headers: { 'x-request-id': `access-${target.name}` } })
    expect(res.statusCode).toBe(200)
    const lines = logLines.filter((line) => line.includes(`"reqId":"access-${target.name}"`)).map((line) => JSON.parse(line))
    expect(lines).toEqual([{
      level: 30, time: expect.any(Number), pid: process.pid, hostname: hostname(), reqId: `access-${target.name}`,
      req: { method: 'GET', url: '/healthz', requestId: `access-${target.name}`, remoteAddress: '127.0.0.1' },
      res: { statusCode: 200 }, responseTime: expect.any(Number), msg: 'request completed',
    }])
    // A line pino writes itself begins the same way.
    t.app.log.info('a line from pino')
    const own = JSON.parse(logLines.find((line) => line.includes('a line from pino'))!)
    expect(Object.keys(own).slice(0, 4)).toEqual(Object.keys(lines[0]).slice(0, 4))
  })
})

describe('a database that is gone', () => {
  it('makes /readyz and API calls answer 503 with Retry-After, while /healthz stays up', async () => {
    const target = testDatabases[0]!
    const t = await buildTestApp(target)
    const account = await t.signUp()
    await t.database.close()
    const ready = await t.inject({ url: '/readyz' })
    expectProblem(ready, 503)
    expect(ready.headers['retry-after']).toBeDefined()
    expect((await t.inject({ url: '/healthz' })).statusCode).toBe(200)
    const api = await t.inject({ url: '/api/v1/tasks', headers: account.headers })
    expectProblem(api, 503)
    expect(api.headers['retry-after']).toBeDefined()
    await t.app.close()
  })
})
