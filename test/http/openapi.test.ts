import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, documentedOperations, PUBLIC_OPERATIONS, testDatabases, type TestApp } from '../helpers.js'

type Json = Record<string, any>

/** Every schema object inside `node` that is written out, not a $ref, with where it is. */
function inlineObjectSchemas (node: unknown, at: string, out: Array<{ at: string, json: string }> = []) {
  if (Array.isArray(node)) node.forEach((item, i) => inlineObjectSchemas(item, `${at}[${i}]`, out))
  else if (node !== null && typeof node === 'object') {
    const object = node as Json
    if (object.type === 'object' && object.properties && Object.keys(object.properties).length > 1) {
      out.push({ at, json: JSON.stringify(object) })
    }
    for (const [key, value] of Object.entries(object)) if (key !== 'example' && key !== 'examples') inlineObjectSchemas(value, `${at}.${key}`, out)
  }
  return out
}

describe.each(testDatabases)('the OpenAPI document on $name', (target) => {
  let t: TestApp
  let doc: Json
  beforeAll(async () => {
    // The limits on, as by default: they add their 429s to the document.
    t = await buildTestApp(target, { env: { RATE_LIMIT_API_PER_MINUTE: '1200', RATE_LIMIT_AUTH_PER_MINUTE: '100', RATE_LIMIT_LOGIN_FAILURES: '10' } })
    doc = (await t.inject({ url: '/openapi.json' })).json()
  })
  afterAll(() => t.close())

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(doc.info.title).toBe('taskbase API')
  })

  it('gives every operation a unique operationId, a summary, and names its schemas instead of repeating them', async () => {
    const operations = await documentedOperations(t.app)
    const ids = operations.map((op) => op.spec.operationId)
    expect(ids.filter((id) => typeof id !== 'string')).toEqual([])
    expect(new Set(ids).size).toBe(ids.length)
    for (const op of operations) expect(op.spec.summary, op.spec.operationId).toEqual(expect.any(String))
    for (const name of ['Task', 'TaskPage', 'NewTask', 'TaskChanges', 'Problem', 'Session', 'User', 'SyncPage', 'ClassicTask']) {
      expect(doc.components.schemas[name], name).toBeDefined()
    }
    const seen = new Map<string, string>()
    for (const { at, json } of inlineObjectSchemas(doc.paths, 'paths')) {
      expect(seen.get(json), `${at} repeats the schema at ${seen.get(json)}: name it`).toBeUndefined()
      seen.set(json, at)
    }
  })

  it('documents every error as application/problem+json with its own meaning, and the headers clients read', async () => {
    for (const op of await documentedOperations(t.app)) {
      const name = `${op.method} ${op.path}`
      for (const [status, response] of Object.entries(op.spec.responses as Json)) {
        expect(response.headers?.['X-Request-Id'], `${name} ${status}`).toBeDefined()
        if (Number(status) < 400) continue
        expect(Object.keys(response.content ?? {}), `${name} ${status}`).toEqual(['application/problem+json'])
        expect(response.description, `${name} ${status}`).not.toBe('Default Response')
        if (status === '429' || status === '503') expect(response.headers['Retry-After'], `${name} ${status}`).toBeDefined()
      }
      if (op.spec.requestBody) for (const status of ['413', '415']) expect(op.spec.responses[status], `${name} ${status}`).toBeDefined()
      if (op.spec.security?.length) expect(op.spec.responses['429'], `${name} 429`).toBeDefined()
      if (!['/healthz', '/metrics'].includes(op.path)) expect(op.spec.responses['503'], `${name} 503`).toBeDefined()
      if (PUBLIC_OPERATIONS.has(name)) expect(op.spec.security, `${name} is public`).toEqual([])
    }
    expect(doc.paths['/api/v1/tasks/{id}'].get.responses['200'].headers.ETag).toBeDefined()
    expect(doc.paths['/api/v1/tasks'].post.responses['201'].headers.Location).toBeDefined()
    expect(Object.keys(doc.paths['/api/v1/events'].get.responses['200'].content)).toEqual(['text/event-stream'])
    expect(doc.paths['/api/v1/events'].get.responses['200'].description).toContain('task.upsert')
    expect(doc.components.schemas.Problem.properties.type.description).toContain('urn:problem-type:taskbase:precondition-failed')
  })

  it('offers the bearer token first in the Authorize dialog, where a new user pastes the access token', () => {
    expect(Object.keys(doc.components.securitySchemes)[0]).toBe('bearerAuth')
  })

  it('documents the 404 of a create naming a foreign project or parent, and which text and times are refused', () => {
    expect(doc.paths['/api/v1/tasks'].post.responses['404'].description).toMatch(/projectId or parentId/)
    expect(doc.info.description).toMatch(/NUL character/)
    expect(doc.info.description).toMatch(/lone UTF-16 surrogate/)
    expect(doc.info.description).toMatch(/0001-9999/)
    expect(doc.components.schemas.NewTask.properties.dueAt.description).toMatch(/0001-9999, no leap second/)
  })

  it('tells how to get a token, and keeps the authorization across reloads in /docs', async () => {
    expect(doc.info.description).toContain('Authorize')
    expect(doc.info.description).toContain('accessToken')
    expect(doc.components.securitySchemes.bearerAuth.description).toEqual(expect.any(String))
    const page = await t.inject({ url: '/docs/' })
    expect(page.body).toContain('taskbase API')
    const init = await t.inject({ url: '/docs/static/swagger-initializer.js' })
    expect(init.body).toContain('persistAuthorization')
    expect(init.body).toContain('Bearer\\s+Bearer') // a pasted "Bearer ey..." is not sent as "Bearer Bearer ey..."
  })

  it('answers each operation\'s own example, sent as shown, with success', async () => {
    // The order a person trying the reference would follow: the account first, its deletion last (a
    // logout ends the session, and its access token with it: it comes after).
    const order = ['register', 'login', 'getMe', 'updateMe', 'createTask', 'listTasks', 'getTask', 'updateTask', 'moveTask',
      'createProject', 'listProjects', 'getProject', 'updateProject', 'moveProject', 'createWebhook', 'updateWebhook', 'syncChanges', 'mcp',
      'createEventTicket', 'classicCreateTask', 'classicListTasks', 'classicReplaceTask', 'refreshSession', 'deleteTask',
      'deleteProject', 'changePassword', 'deleteMe', 'logout']
    const byId = new Map((await documentedOperations(t.app)).map((op) => [op.spec.operationId, op]))
    const withExamples = [...byId.values()].filter((op) => op.spec.requestBody).map((op) => op.spec.operationId)
    expect(withExamples.filter((id) => !order.includes(id))).toEqual([])
    let session: Json = {}
    let taskId = ''
    let projectId = ''
    let webhookId = ''
    for (const id of order) {
      const op = byId.get(id)!
      const example = op.spec.requestBody?.content['application/json'].example
      if (op.spec.requestBody) expect(example, `${id} has an example`).toBeDefined()
      // What only an earlier answer can give: the session's tokens, ids in the path.
      const payload = example?.refreshToken ? { ...example, refreshToken: session.refreshToken } : example
      const url = op.path.replace('{id}', op.path.startsWith('/api/v1/projects') ? projectId : op.path.startsWith('/api/v1/webhooks') ? webhookId : taskId).replace('{user_id}', session.user?.id ?? '')
      const res = await t.inject({
        method: op.method, url, ...(payload !== undefined && { payload }),
        headers: session.accessToken ? { authorization: `Bearer ${session.accessToken}` } : {},
      })
      expect(res.statusCode, `${id}: ${res.body}`).toBeLessThan(300)
      if (id === 'register' || id === 'login') session = res.json()
      if (id === 'refreshSession') session = { ...session, ...res.json() }
      if (id === 'createTask') taskId = res.json().id
      if (id === 'createProject') projectId = res.json().id
      if (id === 'createWebhook') webhookId = res.json().id
    }
  })
})
