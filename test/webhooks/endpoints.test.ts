import { createServer } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp, expectProblem, testDatabases, type TestApp } from '../helpers.js'
import { createWebhook } from './support.js'

/** The endpoints' API, and the refusals of private addresses with WEBHOOKS_ALLOW_PRIVATE off (the default). */
describe.each(testDatabases)('webhook endpoints on $name', (target) => {
  let t: TestApp
  beforeAll(async () => { t = await buildTestApp(target) })
  afterAll(() => t?.close())

  it('shows the secret once, never stores or lists it readable, and pages nothing it should not', async () => {
    const alice = await t.signUp()
    const created = await t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: alice.headers,
      payload: { url: 'https://hooks.example.com/in', events: ['task.upsert', 'reminder.fired'], description: 'Mailer' } })
    expect(created.statusCode).toBe(201)
    const hook = created.json()
    expect(hook).toMatchObject({ url: 'https://hooks.example.com/in', events: ['task.upsert', 'reminder.fired'], description: 'Mailer', enabled: true, version: 1 })
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(Buffer.from(hook.secret.slice(6), 'base64')).toHaveLength(32)
    expect(created.headers.location).toBe(`/api/v1/webhooks/${hook.id}`)
    const one = await t.inject({ url: `/api/v1/webhooks/${hook.id}`, headers: alice.headers })
    expect(one.json()).not.toHaveProperty('secret')
    expect(one.headers.etag).toBe(created.headers.etag)
    expect((await t.inject({ url: '/api/v1/webhooks', headers: alice.headers })).json().items.map((w: any) => Object.keys(w))).not.toContainEqual(expect.arrayContaining(['secret']))
    // At rest: sealed, not the secret, not its bytes.
    const [row] = await t.database.query<{ secret: string }>({ name: 'read_secret', text: 'select secret from webhooks where id = $1' }, [hook.id])
    expect(row!.secret).toMatch(/^v1\./)
    expect(row!.secret).not.toContain(hook.secret.slice(6, 20))
  })

  it('changes with If-Match, refuses a stale ETag (412), unknown fields and empty events (400), and deletes', async () => {
    const alice = await t.signUp()
    const hook = await createWebhook(t, alice, { url: 'https://hooks.example.com/a', events: ['*'] })
    const url = `/api/v1/webhooks/${hook.id}`
    const etag = (await t.inject({ url, headers: alice.headers })).headers.etag as string
    const changed = await t.inject({ method: 'PATCH', url, headers: { ...alice.headers, 'if-match': etag }, payload: { events: ['task.delete'], description: null } })
    expect(changed.statusCode).toBe(200)
    expect(changed.json()).toMatchObject({ events: ['task.delete'], description: null, version: 2 })
    expectProblem(await t.inject({ method: 'PATCH', url, headers: { ...alice.headers, 'if-match': etag }, payload: { enabled: false } }), 412)
    expect(expectProblem(await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { secret: 'whsec_mine' } }), 400).errors).toBeDefined()
    expect(expectProblem(await t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: alice.headers, payload: { url: 'https://hooks.example.com/b', events: [] } }), 400)
      .errors[0].path).toBe('body.events')
    expectProblem(await t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: alice.headers, payload: { url: 'https://hooks.example.com/b', events: ['task.created'] } }), 400)
    const off = await t.inject({ method: 'PATCH', url, headers: alice.headers, payload: { enabled: false } })
    expect(off.json()).toMatchObject({ enabled: false, disabledReason: null, disabledAt: expect.any(String) })
    expectProblem(await t.inject({ method: 'DELETE', url, headers: { ...alice.headers, 'if-match': etag } }), 412)
    expect((await t.inject({ method: 'DELETE', url, headers: alice.headers })).statusCode).toBe(204)
    expectProblem(await t.inject({ url, headers: alice.headers }), 404)
  })

  it('queues the owner\'s writes from the very next one after each route that creates, disables, enables or deletes an endpoint', async () => {
    const alice = await t.signUp()
    /** Whether the user's row says they have an enabled endpoint, and whether a task written now was queued. */
    const next = async () => {
      const task = await t.createTask(alice, { title: 'Next' })
      const [user] = await t.database.query<{ hooked: boolean, queued: boolean }>({ name: 'hooked_and_queued', text: `select u.webhooks_enabled as hooked,
        exists (select 1 from webhook_events e where e.user_id = u.id and e.snapshot->>'id' = $2) as queued from users u where u.id = $1` }, [alice.id, task.id])
      return user
    }
    const change = async (method: 'PATCH' | 'DELETE', id: string, payload?: Record<string, unknown>) =>
      expect((await t.inject({ method, url: `/api/v1/webhooks/${id}`, headers: alice.headers, payload })).statusCode).toBeLessThan(300)
    // .invalid never resolves: what is queued stays queued (each attempt fails).
    expect(await next()).toEqual({ hooked: false, queued: false })
    const first = await createWebhook(t, alice, { url: 'https://hooks.invalid/first', events: ['task.upsert'] })
    expect(await next()).toEqual({ hooked: true, queued: true })
    await change('PATCH', first.id, { enabled: false })
    expect(await next()).toEqual({ hooked: false, queued: false })
    await change('PATCH', first.id, { enabled: true })
    expect(await next()).toEqual({ hooked: true, queued: true })
    const second = await createWebhook(t, alice, { url: 'https://hooks.invalid/second', events: ['task.upsert'] })
    await change('PATCH', second.id, { enabled: false })
    expect(await next()).toEqual({ hooked: true, queued: true }) // the first still listens
    await change('DELETE', first.id)
    expect(await next()).toEqual({ hooked: false, queued: false })
    await change('PATCH', second.id, { description: 'no change of enabled' })
    expect(await next()).toEqual({ hooked: false, queued: false })
    await change('PATCH', second.id, { enabled: true })
    await change('DELETE', second.id)
    expect(await next()).toEqual({ hooked: false, queued: false })
  })

  it('holds at most 10 endpoints per user, under concurrent creates too (the 11th is a 409)', async () => {
    const alice = await t.signUp()
    const answers = await Promise.all(Array.from({ length: 14 }, (_, i) =>
      t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: alice.headers, payload: { url: `https://hooks.example.com/${i}`, events: ['*'] } })))
    expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(10)
    for (const refused of answers.filter((a) => a.statusCode !== 201)) {
      expect(expectProblem(refused, 409).type).toBe('urn:problem-type:taskbase:webhook-limit-reached')
    }
    expect((await t.inject({ url: '/api/v1/webhooks', headers: alice.headers })).json().items).toHaveLength(10)
  })

  it.each([
    ['http://hooks.example.com/', 'https'],
    ['https://127.0.0.1/', '127.0.0.1'],
    ['https://10.1.2.3/', '10.1.2.3'],
    ['https://192.168.0.10/', '192.168.0.10'],
    ['https://169.254.169.254/latest/meta-data', '169.254.169.254'],
    ['https://[::1]/', '::1'],
    ['https://[fd00::1]/', 'fd00::1'],
    ['https://[::ffff:127.0.0.1]/', '::ffff:7f00:1'],
    ['https://[::ffff:a9fe:a9fe]/', '::ffff:a9fe:a9fe'],
    ['https://2130706433/', '127.0.0.1'],
    ['https://0x7f.1/', '127.0.0.1'],
    ['https://0177.0.0.1/', '127.0.0.1'],
    ['https://0.0.0.0/', '0.0.0.0'],
    ['https://localhost/', 'localhost'],
    ['https://LOCALHOST./', 'localhost'],
    ['https://api.localhost/', 'api.localhost'],
    ['https://intranet/', 'intranet'],
    ['https://user:pw@hooks.example.com/', 'password'],
    ['not a url', 'absolute'],
  ])('refuses %s at creation and on PATCH, naming body.url', async (url, mentions) => {
    const alice = await t.signUp()
    const problem = expectProblem(await t.inject({ method: 'POST', url: '/api/v1/webhooks', headers: alice.headers, payload: { url, events: ['*'] } }), 400)
    expect(problem.errors).toEqual([{ path: 'body.url', message: expect.stringContaining(mentions) }])
    const hook = await createWebhook(t, alice, { url: 'https://hooks.example.com/', events: ['*'] })
    expect(expectProblem(await t.inject({ method: 'PATCH', url: `/api/v1/webhooks/${hook.id}`, headers: alice.headers, payload: { url } }), 400)
      .errors[0].path).toBe('body.url')
  })

  it('refuses, when it connects, a host that resolves to the loopback or a private address: a failed attempt with the reason, nothing sent', async () => {
    // A TLS receiver on the loopback that would accept anything; it must never be reached.
    let reached = 0
    const server = createServer((_req, res) => { reached++; res.end('ok') })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const alice = await t.signUp()
      const hook = await createWebhook(t, alice, { url: 'https://hooks.example.com/', events: ['*'] })
      // As if DNS had changed since creation (rebinding), or the row had been written by hand.
      for (const url of [`https://localhost:${port}/`, `https://127.0.0.1:${port}/`, `https://[::ffff:127.0.0.1]:${port}/`, `http://127.0.0.1:${port}/`]) {
        await t.database.query({ name: 'point_hook', text: 'update webhooks set url = $2 where id = $1' }, [hook.id, url])
        const queued = await t.inject({ method: 'POST', url: `/api/v1/webhooks/${hook.id}/test`, headers: alice.headers })
        expect(queued.statusCode).toBe(202)
        const deadline = Date.now() + 5_000
        let attempt: any
        while (!attempt && Date.now() < deadline) {
          const items = (await t.inject({ url: `/api/v1/webhooks/${hook.id}/deliveries`, headers: alice.headers })).json().items
          attempt = items.find((d: any) => d.eventId === queued.json().eventId)
          if (!attempt) await new Promise((resolve) => setTimeout(resolve, 20))
        }
        expect(attempt, url).toMatchObject({ attempt: 1, status: null })
        expect(attempt.error, url).toMatch(url.startsWith('http:') ? /only https/ : /refused: .*not allowed/)
        // Its retry is 5 s away: drop it, so the next URL's test is first in line.
        await t.database.query({ name: 'drop_pending', text: 'delete from webhook_events where webhook_id = $1' }, [hook.id])
        await t.database.query({ name: 'drop_job', text: 'delete from jobs where webhook_id = $1' }, [hook.id])
      }
      expect(reached).toBe(0)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
