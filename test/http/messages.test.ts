import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type Account, type TestApp } from '../helpers.js'

/**
 * What a refused request says: one clear message per wrong field, naming what is accepted, in our
 * words rather than the validator's (issue 16). The messages do not depend on the database.
 */
describe('validation messages', () => {
  let t: TestApp
  let owner: Account
  let taskId: string
  beforeAll(async () => {
    t = await buildTestApp(testDatabases[0]!)
    owner = await t.signUp()
    taskId = (await t.createTask(owner, { title: 'A task' })).id
  })
  afterAll(() => t.close())

  const send = (method: 'POST' | 'PATCH', url: string, payload: unknown) => t.inject({ method, url, headers: owner.headers, payload: payload as object })
  /** The errors of a 400, asserting that no field is named twice. */
  const errorsOf = (res: Parameters<typeof expectProblem>[0]) => {
    const { errors } = expectProblem(res, 400) as { errors: Array<{ path: string, message: string }> }
    const paths = errors.map((e) => e.path)
    expect(new Set(paths).size, JSON.stringify(errors)).toBe(paths.length)
    return Object.fromEntries(errors.map((e) => [e.path, e.message]))
  }

  it('lists the colors a project takes, and says null is one, without a dangling comma', async () => {
    expect(errorsOf(await send('POST', '/api/v1/projects', { name: 'Work', color: 'blue2' }))).toEqual({
      'body.color': 'must be one of: red, orange, yellow, green, teal, blue, purple, pink, grey, or null',
    })
  })

  it('gives one message for a blank field, however many rules it breaks', async () => {
    expect(errorsOf(await send('PATCH', '/api/v1/users/me', { name: '' }))).toEqual({ 'body.name': 'must not be blank' })
    expect(errorsOf(await send('PATCH', `/api/v1/tasks/${taskId}`, { title: ' ', tags: [''] }))).toEqual({
      'body.title': 'must not be blank', 'body.tags.0': 'must not be blank',
    })
  })

  it('asks for at least one field of an empty PATCH, naming the fields it takes', async () => {
    expect(errorsOf(await send('PATCH', `/api/v1/tasks/${taskId}`, {}))).toEqual({
      body: 'must name at least one field to change: title, description, completed, priority, dueAt, tags, recurrence, reminders',
    })
  })

  it('speaks of the unknown field alone, not of a field it did not send', async () => {
    const res = await send('PATCH', '/api/v1/users/me', { email: 'ada@example.com' })
    expect(errorsOf(res)).toEqual({ 'body.email': 'is not a known field' })
    expect(res.json().detail).toBe('The request body has a field this route does not accept (email); it accepts: name, timezone')
  })

  it('names types and limits in words, and says them all in the detail', async () => {
    const res = await send('PATCH', `/api/v1/tasks/${taskId}`, { title: 5, description: 7, priority: 'urgent', tags: 'x', dueAt: '2026-12-01T23:59:60Z' })
    expect(errorsOf(res)).toEqual({
      'body.title': 'must be a string',
      'body.description': 'must be a string or null',
      'body.priority': 'must be one of: none, low, medium, high',
      'body.tags': 'must be a list',
      'body.dueAt': expect.stringMatching(/leap second/),
    })
    expect(res.json().detail).toMatch(/^The request body is not valid: title must be a string; description must be a string or null; /)
    expect(errorsOf(await t.inject({ url: '/api/v1/tasks?limit=0&completed=maybe', headers: owner.headers }))).toEqual({
      'query.limit': 'must be at least 1',
      'query.completed': 'must be true or false',
    })
    expect(errorsOf(await t.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email: 'nope', password: 'short' } }))).toEqual({
      'body.email': 'must be an email address',
      'body.password': 'must be at least 8 characters',
    })
  })

  it('answers a method no route takes (QUERY) with 405 and Allow on a known path, 404 elsewhere, whatever its headers', async () => {
    const known = await t.inject({ method: 'QUERY' as 'GET', url: '/api/v1/tasks', headers: owner.headers })
    expect(expectProblem(known, 405).detail).toMatch(/QUERY is not allowed/)
    expect(known.headers.allow).toBe('GET, HEAD, POST')
    const withBody = await t.inject({ method: 'QUERY' as 'GET', url: '/api/v1/tasks', headers: { ...owner.headers, 'content-type': 'application/json' }, payload: '{}' })
    expectProblem(withBody, 405)
    expectProblem(await t.inject({ method: 'QUERY' as 'GET', url: '/api/v1/nothing-here' }), 404)
  })
})
