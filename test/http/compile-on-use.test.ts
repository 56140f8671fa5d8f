import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileOnUse } from '../../src/http/compile-on-use.js'
import { buildTestApp, expectProblem, testDatabases, type TestApp } from '../helpers.js'

describe('route schemas compiled at their first use', () => {
  it('compile a validator at its first call, and pass on its answer, errors and context', () => {
    const schemas = compileOnUse()
    const compiled: string[] = []
    const seen: unknown[] = []
    const compiler = ({ url }: { url: string }) => {
      compiled.push(url)
      const validate = (data: unknown, context?: unknown) => {
        seen.push(context)
        validate.errors = data === 'bad' ? [{ message: 'is bad' }] : null
        return data !== 'bad'
      }
      validate.errors = null as unknown
      return validate
    }
    const validate = schemas.validators(compiler)({ url: '/a' })
    schemas.validators(compiler)({ url: '/b' })
    expect(compiled).toEqual([])
    // Fastify passes the parent object to a validator with a schemaEnv, as it does to ajv's.
    expect((validate as unknown as { schemaEnv: unknown }).schemaEnv).toBeTruthy()

    expect(validate('bad', { parentData: 'p' })).toBe(false)
    expect(validate.errors).toEqual([{ message: 'is bad' }])
    expect(validate('good')).toBe(true)
    expect(validate.errors).toBeNull()
    expect(seen).toEqual([{ parentData: 'p' }, undefined])
    expect(compiled).toEqual(['/a'])

    expect(schemas.compileAll()).toBe(1) // /b, never used
    expect(compiled).toEqual(['/a', '/b'])
    expect(schemas.compileAll()).toBe(0)
  })

  it('compile a serializer at its first call, as Fastify would have at start', () => {
    const schemas = compileOnUse()
    const serializer = schemas.serializers()({
      method: 'GET', url: '/a', httpStatus: '200',
      schema: { type: 'object', properties: { id: { type: 'string' }, n: { type: 'integer' } } },
    })
    expect(serializer({ id: 'x', n: 2, hidden: true })).toBe('{"id":"x","n":2}')
    expect(schemas.compileAll()).toBe(0)
  })
})

describe('the app', () => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(testDatabases[0]!) })
  afterAll(() => t.close())

  it('validates and serializes a route\'s first request, and every route\'s schemas compile', async () => {
    const account = await t.signUp()
    // The first request to these routes: coerced query, refused body, filtered response.
    expectProblem(await t.inject({ method: 'POST', url: '/api/v1/tasks', headers: account.headers, payload: { title: 5 } }), 400)
    const page = await t.inject({ url: '/api/v1/tasks?limit=1', headers: account.headers })
    expect(page.statusCode).toBe(200)
    expect(page.json()).toEqual({ items: [], nextCursor: null })
    expect(t.app.compileSchemas()).toBeGreaterThan(100)
    expect(t.app.compileSchemas()).toBe(0)
  })
})
